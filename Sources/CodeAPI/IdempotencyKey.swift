import CodeDomain
import CodeRuntime
import Crypto
import Foundation

/// `Idempotency-Key` of `POST /v1/deployments`.
enum IdempotencyKey {
    static let maximumLength = 255

    /// 1-255 visible ASCII characters, or absent.
    static func validated(_ value: String?) throws -> String? {
        guard let value else { return nil }
        guard (1...maximumLength).contains(value.utf8.count), value.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw ServiceError.badRequest(
                code: "invalid_idempotency_key", "Idempotency-Key must be 1-\(maximumLength) visible ASCII characters."
            )
        }
        return value
    }

    /// What makes two requests "the same": the decoded body, not its bytes, so key order and whitespace
    /// do not matter.
    static func fingerprint(_ request: DeploymentRequest) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(request)) ?? Data()
        return LowercaseHex.string(of: SHA256.hash(data: data))
    }
}
