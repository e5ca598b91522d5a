import CodeDomain
import Foundation

/// Authentication of `Authorization: Bearer <key>` against the key repository, shared by code-api and
/// code-worker so both accept exactly the same keys. Looked up on every request, unless `cache` is given:
/// then a found key is kept for the cache's lifetime (code-api's: one second at most; `APIKeyCache` says
/// what that bounds).
public enum BearerAuthentication {
    public enum Failure: String, Error, Sendable {
        case missing, malformed, unknown, revoked
    }

    public static func authenticate(authorization header: String?, keys: any APIKeyRepository, cache: APIKeyCache? = nil) async throws
        -> Result<APIKey, Failure>
    {
        guard let header else { return .failure(.missing) }
        guard let credential = BearerCredential.of(authorization: header) else { return .failure(.malformed) }
        let secret = String(credential)
        guard APIKeySecret.isWellFormed(secret) else { return .failure(.malformed) }
        let hash = APIKeySecret.hash(secret)
        let found = if let cache { try await cache.key(secretHash: hash, in: keys) } else { try await keys.key(secretHash: hash) }
        guard let stored = found, APIKeySecret.constantTimeEquals(stored.secretHash, hash) else {
            return .failure(.unknown)
        }
        guard stored.key.revokedAt == nil else { return .failure(.revoked) }
        return .success(stored.key)
    }
}
