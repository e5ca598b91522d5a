import CodeDomain
import Foundation
import PostgresNIO

extension PostgresStore: APIKeyRepository {
    public func createKey(_ key: NewAPIKey) async throws -> APIKey {
        try await metrics.measure("key.create") { [self] in
            let created = try await client.query(
                """
                INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at, created_by)
                VALUES (\(key.id), \(key.name), \(key.role.rawValue), \(key.prefix), \(key.secretHash),
                    \(key.createdAt.millisecondsSinceEpoch), \(key.createdBy))
                RETURNING \(unescaped: APIKeyRecord.columns)
                """, logger: logger
            ).firstRecord { try APIKeyRecord($0) }
            guard let created else { throw StoreError.conflict("key was not created") }
            return try created.apiKey()
        }
    }

    public func ensureKey(_ key: NewAPIKey) async throws -> APIKey {
        try await metrics.measure("key.ensure") { [self] in
            // A key with this secret may exist (revoked or not): keep it as it is.
            if let created = try await client.query(
                """
                INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at, created_by)
                VALUES (\(key.id), \(key.name), \(key.role.rawValue), \(key.prefix), \(key.secretHash),
                    \(key.createdAt.millisecondsSinceEpoch), \(key.createdBy))
                ON CONFLICT (secret_hash) DO NOTHING
                RETURNING \(unescaped: APIKeyRecord.columns)
                """, logger: logger
            ).firstRecord({ try APIKeyRecord($0) }) {
                return try created.apiKey()
            }
            // Keys are never deleted, so the conflicting key is there to read.
            guard let existing = try await keyRecord(secretHash: key.secretHash) else {
                throw StoreError.conflict("key with this secret vanished while it was ensured")
            }
            return try existing.apiKey()
        }
    }

    public func key(secretHash: String) async throws -> StoredAPIKey? {
        try await metrics.measure("key.lookup") { [self] in
            try await keyRecord(secretHash: secretHash)?.storedKey()
        }
    }

    public func keys(limit: Int, before: Int64?) async throws -> StorePage<APIKey> {
        try await metrics.measure("key.list") { [self] in
            let rows = try await client.query(
                """
                SELECT \(unescaped: APIKeyRecord.columns) FROM api_keys WHERE seq < \(before ?? Int64.max)
                ORDER BY seq DESC LIMIT \(StorePage<APIKey>.rowLimit(limit))
                """, logger: logger
            ).records { try APIKeyRecord($0) }
            return try StorePage(rows: rows, limit: limit, position: \.seq) { try $0.apiKey() }
        }
    }

    public func revokeKey(id: String, at now: Date) async throws -> APIKey? {
        try await metrics.measure("key.revoke") { [self] in
            // An already revoked key keeps its first revocation time. Revocation only ever goes one way, so
            // the read after a failed update needs no transaction.
            if let revoked = try await client.query(
                """
                UPDATE api_keys SET revoked_at = \(now.millisecondsSinceEpoch) WHERE id = \(id) AND revoked_at IS NULL
                RETURNING \(unescaped: APIKeyRecord.columns)
                """, logger: logger
            ).firstRecord({ try APIKeyRecord($0) }) {
                return try revoked.apiKey()
            }
            return try await client.query(
                "SELECT \(unescaped: APIKeyRecord.columns) FROM api_keys WHERE id = \(id)", logger: logger
            ).firstRecord { try APIKeyRecord($0) }?.apiKey()
        }
    }

    public func recordKeyUse(id: String, at now: Date) async throws {
        try await metrics.measure("key.touch") { [self] in
            try await client.query(
                "UPDATE api_keys SET last_used_at = \(now.millisecondsSinceEpoch) WHERE id = \(id)", logger: logger
            ).drain()
        }
    }

    private func keyRecord(secretHash: String) async throws -> APIKeyRecord? {
        try await client.query(
            "SELECT \(unescaped: APIKeyRecord.columns) FROM api_keys WHERE secret_hash = \(secretHash)", logger: logger
        ).firstRecord { try APIKeyRecord($0) }
    }
}
