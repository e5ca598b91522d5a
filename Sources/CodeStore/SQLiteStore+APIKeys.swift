import CodeDomain
import Foundation
import GRDB

extension SQLiteStore: APIKeyRepository {
    public func createKey(_ key: NewAPIKey) async throws -> APIKey {
        try await metrics.measure("key.create") { [self] in
            let created = try await write { db in
                try SQLRequest<APIKeyRecord>(
                    literal: """
                        INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at, created_by)
                        VALUES (\(key.id), \(key.name), \(key.role.rawValue), \(key.prefix), \(key.secretHash),
                            \(key.createdAt.millisecondsSinceEpoch), \(key.createdBy))
                        RETURNING \(sql: APIKeyRecord.columns)
                        """, cached: true
                ).fetchOne(db)
            }
            guard let created else { throw StoreError.conflict("key was not created") }
            return try created.apiKey()
        }
    }

    public func ensureKey(_ key: NewAPIKey) async throws -> APIKey {
        try await metrics.measure("key.ensure") { [self] in
            let ensured = try await write { db -> APIKeyRecord? in
                // A key with this secret may exist (revoked or not): keep it as it is.
                if let created = try SQLRequest<APIKeyRecord>(
                    literal: """
                        INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at, created_by)
                        VALUES (\(key.id), \(key.name), \(key.role.rawValue), \(key.prefix), \(key.secretHash),
                            \(key.createdAt.millisecondsSinceEpoch), \(key.createdBy))
                        ON CONFLICT (secret_hash) DO NOTHING
                        RETURNING \(sql: APIKeyRecord.columns)
                        """, cached: true
                ).fetchOne(db) {
                    return created
                }
                return try Self.key(secretHash: key.secretHash, in: db)
            }
            guard let ensured else { throw StoreError.conflict("key with this secret vanished while it was ensured") }
            return try ensured.apiKey()
        }
    }

    public func key(secretHash: String) async throws -> StoredAPIKey? {
        try await metrics.measure("key.lookup") { [self] in
            try read { db in try Self.key(secretHash: secretHash, in: db) }?.storedKey()
        }
    }

    public func keys(limit: Int, before: Int64?) async throws -> StorePage<APIKey> {
        try await metrics.measure("key.list") { [self] in
            let rows = try read { db in
                try SQLRequest<APIKeyRecord>(
                    literal: """
                        SELECT \(sql: APIKeyRecord.columns) FROM api_keys WHERE seq < \(before ?? Int64.max)
                        ORDER BY seq DESC LIMIT \(StorePage<APIKey>.rowLimit(limit))
                        """, cached: true
                ).fetchAll(db)
            }
            return try StorePage(rows: rows, limit: limit, position: \.seq) { try $0.apiKey() }
        }
    }

    public func revokeKey(id: String, at now: Date) async throws -> APIKey? {
        try await metrics.measure("key.revoke") { [self] in
            try await write { db -> APIKeyRecord? in
                // An already revoked key keeps its first revocation time.
                if let revoked = try SQLRequest<APIKeyRecord>(
                    literal: """
                        UPDATE api_keys SET revoked_at = \(now.millisecondsSinceEpoch) WHERE id = \(id) AND revoked_at IS NULL
                        RETURNING \(sql: APIKeyRecord.columns)
                        """, cached: true
                ).fetchOne(db) {
                    return revoked
                }
                return try SQLRequest<APIKeyRecord>(
                    literal: "SELECT \(sql: APIKeyRecord.columns) FROM api_keys WHERE id = \(id)", cached: true
                ).fetchOne(db)
            }?.apiKey()
        }
    }

    public func recordKeyUse(id: String, at now: Date) async throws {
        try await metrics.measure("key.touch") { [self] in
            try await write { db in
                try db.cachedStatement(literal: "UPDATE api_keys SET last_used_at = \(now.millisecondsSinceEpoch) WHERE id = \(id)")
                    .execute()
            }
        }
    }

    /// Authentication looks keys up by hash on every request: a cached statement on a reader connection,
    /// from constant text (an `SQL` literal builds its text and arguments anew on every call, only to find
    /// the same cached statement: 2-3 % of a read's CPU; the same holds for the create's statements).
    private static func key(secretHash: String, in db: Database) throws -> APIKeyRecord? {
        try APIKeyRecord.fetchOne(db.cachedStatement(sql: keyBySecretHash), arguments: [secretHash])
    }

    private static let keyBySecretHash = "SELECT \(APIKeyRecord.columns) FROM api_keys WHERE secret_hash = ?"
}
