import CodeDomain
import Foundation
import PostgresNIO

extension PostgresStore: AuditRepository {
    public func recordAudit(_ entry: NewAuditEntry) async throws {
        try await metrics.measure("audit.record") { [self] in
            try await client.query(.insertAudit(entry), logger: logger).drain()
        }
    }

    public func auditEntries(limit: Int, before: Int64?) async throws -> StorePage<AuditEntry> {
        try await metrics.measure("audit.list") { [self] in
            let rows = try await client.query(
                """
                SELECT \(unescaped: AuditRecord.columns) FROM audit_log WHERE seq < \(before ?? Int64.max)
                ORDER BY seq DESC LIMIT \(StorePage<AuditEntry>.rowLimit(limit))
                """, logger: logger
            ).records { try AuditRecord($0) }
            return StorePage(rows: rows, limit: limit, position: \.seq, item: \.entry)
        }
    }
}

extension PostgresQuery {
    /// Appends an audit row (alone, or in the transaction of the change it records).
    static func insertAudit(_ entry: NewAuditEntry) -> PostgresQuery {
        """
        INSERT INTO audit_log (at, key_id, action, target, outcome, status, request_id, method, path, client)
        VALUES (\(entry.at.millisecondsSinceEpoch), \(entry.keyID), \(entry.action), \(entry.target), \(entry.outcome),
            \(entry.status), \(entry.requestID), \(entry.method), \(entry.path), \(entry.client))
        """
    }
}
