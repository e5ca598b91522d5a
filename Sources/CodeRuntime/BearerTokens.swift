@preconcurrency import Crypto  // SHA256.Digest is plain bytes but not marked Sendable in swift-crypto 3
import Foundation
import Hummingbird

/// A fixed set of bearer tokens from configuration (`MCP_AUTH_TOKENS`, a generated service's
/// `AUTH_TOKENS`), for services whose clients hold shared secrets rather than database-backed keys.
///
/// Only the SHA-256 digest of each token is kept. A presented token is hashed and compared with every
/// digest, matched or not: swift-crypto compares digests in constant time, and hashing first keeps the
/// tokens' lengths out of the timing too.
public struct BearerTokens: Sendable {
    private let digests: [SHA256.Digest]

    public init(_ tokens: [String]) {
        digests = tokens.map { SHA256.hash(data: Data($0.utf8)) }
    }

    /// Whether an `Authorization` header value carries one of the tokens.
    public func accepts(authorization header: String?) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        let presented = SHA256.hash(data: Data(header.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8))
        return digests.reduce(false) { matched, digest in (digest == presented) || matched }
    }
}

/// Answers 401 `unauthorized` (with `WWW-Authenticate: Bearer`) unless the request carries one of the
/// tokens. Put it on the route groups that need it, never in front of the health routes.
public struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: BearerTokens

    public init(tokens: BearerTokens) {
        self.tokens = tokens
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard tokens.accepts(authorization: request.headers[.authorization]) else {
            throw ServiceError.unauthorized("Send a token as 'Authorization: Bearer <token>'.")
        }
        return try await next(request, context)
    }
}
