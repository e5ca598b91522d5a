import CodeAPIContract
import CodeDomain
import CodeRuntime
import CodeStore
import Foundation

/// `/v1/keys` (admin): create (the one response with the secret), list, revoke.
extension APIHandlers {
    static let maximumKeyNameLength = 100

    /// The rule of the contract's `KeyRequest.name` pattern: no C0 or C1 control characters, something
    /// other than spaces, at most 100 Unicode scalars (JSON Schema counts code points, not characters).
    static func isKeyName(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        return (1...maximumKeyNameLength).contains(scalars.count)
            && !scalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
            && scalars.contains { $0 != " " }
    }

    func createKey(_ input: Operations.CreateKey.Input) async throws -> Operations.CreateKey.Output {
        let admin = try Identity.require(.admin)
        let body =
            switch input.body {
            case .json(let body): body
            }
        guard Self.isKeyName(body.name) else {
            throw ServiceError.validation([
                .init(
                    field: "name", message: "must be 1-\(Self.maximumKeyNameLength) characters without control characters, not only spaces")
            ])
        }
        let role = body.role.domain
        let secret = APIKeySecret.generate()
        let key = try await store.createKey(
            NewAPIKey(
                name: body.name, role: role, prefix: APIKeySecret.prefix(of: secret), secretHash: APIKeySecret.hash(secret),
                createdBy: admin.id)
        )
        requestLogger.info("key created", metadata: ["key_id": .string(key.id), "role": .string(role.rawValue)])
        return .created(
            .init(headers: .init(location: "/v1/keys/\(key.id)"), body: .json(.init(value1: .init(key), value2: .init(secret: secret))))
        )
    }

    func listKeys(_ input: Operations.ListKeys.Input) async throws -> Operations.ListKeys.Output {
        try Identity.require(.admin)
        var parameters = ListParameters()
        let limit = parameters.limit(input.query.limit, default: 50)
        let before = parameters.cursor(input.query.cursor)
        try parameters.validate()
        let page = try await store.keys(limit: limit, before: before)
        return .ok(.init(body: .json(.init(items: page.items.map(Components.Schemas.Key.init), nextCursor: Cursor.encode(page.next)))))
    }

    func revokeKey(_ input: Operations.RevokeKey.Input) async throws -> Operations.RevokeKey.Output {
        let admin = try Identity.require(.admin)
        let id = input.path.id
        // Revoking the key in use would lock its holder out mid-session; use another admin key for that.
        guard id != admin.id else {
            throw ServiceError.conflict(code: "cannot_revoke_own_key", "A key cannot revoke itself; revoke it with another admin key.")
        }
        // Whatever the outcome: a write that timed out may still have been committed.
        defer { keyCache?.forget(keyID: id) }
        guard let key = try await store.revokeKey(id: id, at: Date()) else {
            throw ServiceError.notFound("Key \(id) does not exist.")
        }
        requestLogger.info("key revoked", metadata: ["key_id": .string(key.id)])
        return .ok(.init(body: .json(.init(key))))
    }
}
