import CodeDomain
import Foundation
import GRDB

extension SQLiteStore: AuditRepository {
    public func recordAudit(_ entry: NewAuditEntry) async throws {
        try await metrics.measure("audit.record") { [self] in
            try await write { db in try db.insertAudit(entry) }
        }
    }

    public func auditEntries(limit: Int, before: Int64?) async throws -> StorePage<AuditEntry> {
        try await metrics.measure("audit.list") { [self] in
            let rows = try read { db in
                try SQLRequest<AuditRecord>(
                    literal: """
                        SELECT \(sql: AuditRecord.columns) FROM audit_log WHERE seq < \(before ?? Int64.max)
                        ORDER BY seq DESC LIMIT \(StorePage<AuditEntry>.rowLimit(limit))
                        """, cached: true
                ).fetchAll(db)
            }
            return StorePage(rows: rows, limit: limit, position: \.seq, item: \.entry)
        }
    }
}

extension Database {
    /// Appends an audit row (alone, or in the transaction of the change it records).
    func insertAudit(_ entry: NewAuditEntry) throws {
        try cachedStatement(
            sql: """
                INSERT INTO audit_log (at, key_id, action, target, outcome, status, request_id, method, path, client)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            entry.at.millisecondsSinceEpoch, entry.keyID, entry.action, entry.target, entry.outcome, entry.status, entry.requestID,
            entry.method, entry.path, entry.client,
        ])
    }
}
