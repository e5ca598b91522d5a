import CodeDomain
import CodeRuntime
import Foundation
import Hummingbird

/// The request context of code-api: Hummingbird's core storage plus the authenticated key.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AccessMiddleware` for every request under `/v1`.
    public var identity: APIKey?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        identity = nil
    }

    /// Bodies Hummingbird decodes for us are capped like the ones we decode ourselves.
    public var maxUploadSize: Int { JSONBody.defaultLimit }

    public var responseEncoder: JSONEncoder { CodeJSON.encoder }

    /// The key of this request if its role allows `role`; 401 or 403 otherwise.
    @discardableResult
    public func require(_ role: Role) throws -> APIKey {
        guard let identity else {
            throw ServiceError.unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
        }
        guard identity.role.allows(role) else {
            throw ServiceError.forbidden("This needs the \(role.rawValue) role; the key has \(identity.role.rawValue).")
        }
        return identity
    }
}
