import CodeDomain
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
        digests = tokens.map { Self.digest(of: $0) }
    }

    /// Whether an `Authorization` header value carries one of the tokens.
    public func accepts(authorization header: String?) -> Bool {
        guard let header, let token = BearerCredential.of(authorization: header) else { return false }
        return accepts(tokenDigest: Self.digest(of: token))
    }

    /// Whether a presented token, by its digest (`digest(of:)`), is one of the tokens.
    public func accepts(tokenDigest presented: SHA256.Digest) -> Bool {
        digests.reduce(false) { matched, digest in (digest == presented) || matched }
    }

    /// The SHA-256 digest of a token's UTF-8, hashed in place (a header's `Substring` is not copied).
    public static func digest(of token: some StringProtocol) -> SHA256.Digest {
        token.withUTF8Bytes { SHA256.hash(data: $0) }
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
