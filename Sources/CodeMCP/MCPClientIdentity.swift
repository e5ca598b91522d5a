import CodeDomain
import CodeRuntime
@preconcurrency import Crypto
import Foundation
import HTTPTypes

/// Who an MCP client is, from its bearer token: the SHA-256 digest of the token (a session belongs to
/// the token that opened it) and a short label for code-api (`mcp:` and the digest's first 12 hex
/// digits), sent as `X-Code-Client` on every call and put in front of its idempotency keys, so that
/// agents sharing code-mcp's API key stay apart in the audit log and cannot replay each other's keys.
/// The label names the token without revealing it; MCP tokens carry no names of their own.
struct MCPClientIdentity: Sendable {
    /// The token's SHA-256 digest, which `BearerTokens.accepts(tokenDigest:)` checks: a request's token is
    /// hashed once.
    let tokenDigest: SHA256.Digest
    let label: String

    /// The identity of the token in an `Authorization: Bearer` header (read as `BearerTokens` reads it).
    init?(authorization header: String?) {
        guard let header, let token = BearerCredential.of(authorization: header) else { return nil }
        self.init(token: token)
    }

    init(token: some StringProtocol) {
        tokenDigest = BearerTokens.digest(of: token)
        label = tokenDigest.withUnsafeBytes { LowercaseHex.string(prefix: "mcp:", of: UnsafeRawBufferPointer(rebasing: $0.prefix(6))) }
    }

    /// Whether `other` is the same token, compared in constant time.
    func isSameClient(as other: MCPClientIdentity) -> Bool {
        // swift-crypto compares digests in constant time.
        tokenDigest == other.tokenDigest
    }

    /// The client's idempotency key as code-api receives it: `<label>:<key>`. The contract allows 1-255
    /// visible ASCII characters; a key too long to carry the label becomes `<label>:sha256:<its digest>`,
    /// still the same for the same key.
    func namespaced(idempotencyKey key: String) -> String {
        let prefix = label + ":"
        if prefix.utf8.count + key.utf8.count <= Self.maximumIdempotencyKeyLength { return prefix + key }
        return LowercaseHex.string(prefix: prefix + "sha256:", of: key.withUTF8Bytes { SHA256.hash(data: $0) })
    }

    static let maximumIdempotencyKeyLength = 255

    /// The client a tool call, resource read or prompt serves, for the calls it makes to code-api.
    @TaskLocal static var current: MCPClientIdentity?
}

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
}
