import CodeDomain
import CodeRuntime

/// The API key of the request being handled, set by `AccessMiddleware` for every operation of the
/// contract. The generated handlers receive only their typed input, so the key travels as a task-local
/// value rather than in the Hummingbird context.
enum Identity {
    @TaskLocal static var current: APIKey?

    /// The key of this request if its role allows `role`; 401 or 403 otherwise.
    @discardableResult
    static func require(_ role: Role) throws -> APIKey {
        guard let key = current else {
            throw ServiceError.unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
        }
        guard key.role.allows(role) else {
            throw ServiceError.forbidden("This needs the \(role.rawValue) role; the key has \(key.role.rawValue).")
        }
        return key
    }
}
