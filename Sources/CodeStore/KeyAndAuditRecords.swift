import CodeDomain
import Foundation

// Rows of `api_keys` and `audit_log` as the database stores them, and their mapping to domain values,
// shared by both backends.

/// A row of `api_keys`.
struct APIKeyRecord: Sendable {
    var seq: Int64
    var id: String
    var name: String
    var role: String
    var prefix: String
    var secretHash: String
    var createdAt: Int64
    var createdBy: String?
    var lastUsedAt: Int64?
    var revokedAt: Int64?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case seq, id, name, role, prefix
        case secretHash = "secret_hash"
        case createdAt = "created_at"
        case createdBy = "created_by"
        case lastUsedAt = "last_used_at"
        case revokedAt = "revoked_at"
    }

    static let columns = CodingKeys.columnList

    func apiKey() throws -> APIKey {
        APIKey(
            id: id, name: name, role: try .init(stored: role, column: "role"), prefix: prefix,
            createdAt: Date(millisecondsSinceEpoch: createdAt), createdBy: createdBy,
            lastUsedAt: lastUsedAt.map(Date.init(millisecondsSinceEpoch:)), revokedAt: revokedAt.map(Date.init(millisecondsSinceEpoch:))
        )
    }

    func storedKey() throws -> StoredAPIKey {
        StoredAPIKey(key: try apiKey(), secretHash: secretHash)
    }
}

/// A row of `audit_log`.
struct AuditRecord: Sendable {
    var seq: Int64
    var at: Int64
    var keyID: String?
    var action: String
    var target: String?
    var outcome: String
    var status: Int64
    var requestID: String?
    var method: String
    var path: String
    var client: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case seq, at
        case keyID = "key_id"
        case action, target, outcome, status
        case requestID = "request_id"
        case method, path, client
    }

    static let columns = CodingKeys.columnList

    var entry: AuditEntry {
        AuditEntry(
            sequence: seq, at: Date(millisecondsSinceEpoch: at), keyID: keyID, action: action, target: target,
            outcome: outcome, status: Int(status), requestID: requestID, method: method, path: path, client: client
        )
    }
}
