import CodeDomain
import CodeRuntime
import CodeStore
import Foundation
import Hummingbird

/// `/v1/keys` and `/v1/audit` (admin), `/v1/policy` (viewer).
struct AdminRoutes {
    let store: any APIKeyRepository & AuditRepository
    let policy: DeploymentPolicy

    static let maximumNameLength = 100

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("/keys", use: createKey)
        group.get("/keys", use: listKeys)
        group.delete("/keys/{id}", use: revokeKey)
        group.get("/audit", use: listAudit)
        group.get("/policy", use: showPolicy)
    }

    /// The rule of the OpenAPI `KeyRequest.name` pattern: no C0 or C1 control characters, something other
    /// than spaces, at most 100 Unicode scalars (JSON Schema counts code points, not characters).
    static func isKeyName(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        return (1...maximumNameLength).contains(scalars.count)
            && !scalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
            && scalars.contains { $0 != " " }
    }

    struct CreateKeyRequest: Decodable {
        let name: String
        let role: String
    }

    /// The one response that carries a key's secret.
    struct CreatedKey: Encodable {
        let key: APIKey
        let secret: String

        func encode(to encoder: any Encoder) throws {
            try key.encode(to: encoder)
            enum Keys: String, CodingKey { case secret }
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(secret, forKey: .secret)
        }
    }

    @Sendable func createKey(_ request: Request, context: APIRequestContext) async throws -> Response {
        let admin = try context.require(.admin)
        let body = try await JSONBody.decode(CreateKeyRequest.self, from: request)
        var errors: [ProblemDetails.FieldError] = []
        let name = body.name
        if !Self.isKeyName(name) {
            errors.append(.init(field: "name", message: "must be 1-\(Self.maximumNameLength) characters without control characters, not only spaces"))
        }
        let role = Role(rawValue: body.role)
        if role == nil {
            errors.append(.init(field: "role", message: "must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        guard errors.isEmpty, let role else { throw ServiceError.validation(errors) }
        let secret = APIKeySecret.generate()
        let key = try await store.createKey(NewAPIKey(
            name: name, role: role, prefix: APIKeySecret.prefix(of: secret), secretHash: APIKeySecret.hash(secret), createdBy: admin.id
        ))
        context.logger.info("key created", metadata: ["key_id": .string(key.id), "role": .string(role.rawValue)])
        return try jsonResponse(CreatedKey(key: key, secret: secret), status: .created, headers: [.location: "/v1/keys/\(key.id)"])
    }

    @Sendable func listKeys(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.admin)
        var query = QueryParameters(request)
        let limit = query.limit(default: 50)
        let before = query.cursor()
        try query.validate()
        let page = try await store.keys(limit: limit, before: before)
        return try jsonResponse(Page(items: page.items, nextCursor: Cursor.encode(page.next)))
    }

    @Sendable func revokeKey(_ request: Request, context: APIRequestContext) async throws -> Response {
        let admin = try context.require(.admin)
        let id = try context.parameters.require("id")
        // Revoking the key in use would lock its holder out mid-session; use another admin key for that.
        guard id != admin.id else {
            throw ServiceError.conflict(code: "cannot_revoke_own_key", "A key cannot revoke itself; revoke it with another admin key.")
        }
        guard let key = try await store.revokeKey(id: id, at: Date()) else {
            throw ServiceError.notFound("Key \(id) does not exist.")
        }
        context.logger.info("key revoked", metadata: ["key_id": .string(key.id)])
        return try jsonResponse(key)
    }

    @Sendable func listAudit(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.admin)
        var query = QueryParameters(request)
        let limit = query.limit(default: 50)
        let before = query.cursor()
        try query.validate()
        let page = try await store.auditEntries(limit: limit, before: before)
        return try jsonResponse(Page(items: page.items, nextCursor: Cursor.encode(page.next)))
    }

    @Sendable func showPolicy(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.viewer)
        return try jsonResponse(PolicyDocument(rules: DeploymentPolicy.rules, allowedRegistries: policy.allowedRegistries?.sorted()))
    }
}
