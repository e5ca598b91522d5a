import CodeDomain
import Crypto
import Foundation
import Testing

@testable import CodeAPI

/// The fingerprint stored with an idempotency key: the same for the same request however it was written,
/// and the same hex as the databases already hold (it was written with `String(format: "%02x")` per byte).
@Suite("Idempotency key fingerprint")
struct IdempotencyKeyTests {
    @Test(arguments: [
        DeploymentRequest(service: "web", image: "ghcr.io/acme/web:1.2.3", environment: "staging"),
        DeploymentRequest(
            service: "api", image: "ghcr.io/acme/api@sha256:" + String(repeating: "a", count: 64), environment: "production",
            strategy: "canary", replicas: 3, healthURL: "https://api.example.com/health", labels: ["team": "core", "tier": "1"]),
    ])
    func isTheLowercaseHexSHA256OfTheRequestWithSortedKeys(request: DeploymentRequest) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let expected = SHA256.hash(data: try encoder.encode(request)).map { String(format: "%02x", $0) }.joined()
        #expect(IdempotencyKey.fingerprint(request) == expected)
        #expect(expected.utf8.count == 64)
    }
}
