import CodeConfiguration
import CodeDomain
import CodeRuntime
import CodeStore
import CodeTestSupport
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

@testable import CodeWorker

/// A real HTTP receiver on loopback that checks the signature as the documentation tells receivers
/// to (HMAC-SHA256 of `<timestamp>.<body>`, a timestamp at most five minutes away) and answers from a
/// script. `/moved` redirects to `/elsewhere`, which counts whatever reaches it.
final class WebhookReceiver: Sendable {
    let secret = "webhook-secret-\(UUID().uuidString)"
    let script: [HTTPResponse.Status]
    let deliveries = NIOLockedValueBox<[(signatureValid: Bool, deliveryID: String?, body: Data)]>([])
    let elsewhere = NIOLockedValueBox(0)
    static let replayWindow: TimeInterval = 300

    init(script: [HTTPResponse.Status]) {
        self.script = script
    }

    static func verify(body: Data, timestamp: String?, signature: String?, secret: String, now: Date = Date()) -> Bool {
        guard let timestamp, let seconds = TimeInterval(timestamp), abs(now.timeIntervalSince1970 - seconds) <= replayWindow else {
            return false
        }
        let expected =
            "sha256="
            + HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).".utf8) + body, using: SymmetricKey(data: Data(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
        return signature == expected
    }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.post("/rollouts") { request, _ -> Response in
            let body = Data(buffer: try await request.body.collect(upTo: 1 << 20))
            let valid = Self.verify(
                body: body, timestamp: request.headers[HTTPField.Name("X-Code-Timestamp")!],
                signature: request.headers[HTTPField.Name("X-Code-Signature")!], secret: self.secret)
            let index = self.deliveries.withLockedValue { deliveries -> Int in
                deliveries.append((valid, request.headers[HTTPField.Name("X-Code-Delivery")!], body))
                return deliveries.count - 1
            }
            guard valid else { return Response(status: .unauthorized) }
            return Response(status: index < self.script.count ? self.script[index] : .ok)
        }
        router.post("/moved") { _, _ -> Response in
            Response(status: .found, headers: [.location: "/elsewhere"])
        }
        router.on("/elsewhere", method: .get) { _, _ -> Response in
            self.elsewhere.withLockedValue { $0 += 1 }
            return Response(status: .ok)
        }
        router.on("/elsewhere", method: .post) { _, _ -> Response in
            self.elsewhere.withLockedValue { $0 += 1 }
            return Response(status: .ok)
        }
        return Application(router: router)
    }
}

@Suite("Webhook rollout driver")
struct WebhookDriverTests {
    func configure(_ receiver: WebhookReceiver, port: Int, path: String = "/rollouts") -> @Sendable (inout WorkerSettings) -> Void {
        { settings in
            settings.rollout = .webhook(
                .init(
                    url: URL(string: "http://127.0.0.1:\(port)\(path)")!, secret: receiver.secret, timeout: .seconds(2),
                    maxAttempts: 4, initialBackoff: .milliseconds(20), maximumBackoff: .milliseconds(100)
                )
            )
        }
    }

    @Test(arguments: TestBackend.available)
    func retriesServerErrorsThenSucceedsWithSignedDeliveries(backend: TestBackend) async throws {
        let receiver = WebhookReceiver(script: [.serviceUnavailable, .badGateway])
        try await receiver.application().test(.live) { client in
            try await withWorker(backend, configure: configure(receiver, port: client.port!)) { worker in
                let queued = try await worker.enqueue()
                let finished = try await worker.waitUntilFinished(queued.id)
                #expect(finished.status == .succeeded)
                let deliveries = receiver.deliveries.withLockedValue { $0 }
                try #require(deliveries.count == 3)
                #expect(deliveries.allSatisfy { $0.signatureValid })
                #expect(Set(deliveries.compactMap(\.deliveryID)).count == 1, "retries repeat the delivery id")
                let payload = try JSONSerialization.jsonObject(with: deliveries[0].body) as? [String: Any]
                #expect((payload?["deployment"] as? [String: Any])?["id"] as? String == queued.id)
                #expect(((payload?["manifests"] as? [String: Any])?["kubernetes"] as? String)?.contains("kind: Deployment") == true)
                let retries = try await worker.events(queued.id).filter { $0.step == "rollout" && $0.kind == .info }.map(\.message)
                try #require(retries.count == 3)
                #expect(retries[0].contains("HTTP 503"))
                let metrics = String(decoding: worker.runtime.metrics.exposition(), as: UTF8.self)
                #expect(metrics.contains(#"code_worker_webhook_attempts_total{result="server_error"} 2"#))
                #expect(metrics.contains(#"code_worker_webhook_attempts_total{result="success"} 1"#))
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func clientErrorFailsWithoutRetry(backend: TestBackend) async throws {
        let receiver = WebhookReceiver(script: [.unprocessableContent])
        try await receiver.application().test(.live) { client in
            try await withWorker(backend, configure: configure(receiver, port: client.port!)) { worker in
                let queued = try await worker.enqueue()
                let finished = try await worker.waitUntilFinished(queued.id)
                #expect(finished.status == .failed)
                #expect(finished.error?.contains("HTTP 422; not retried") == true)
                #expect(receiver.deliveries.withLockedValue { $0.count } == 1)
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func persistentServerErrorsExhaustTheRetries(backend: TestBackend) async throws {
        let receiver = WebhookReceiver(script: Array(repeating: .internalServerError, count: 10))
        try await receiver.application().test(.live) { client in
            try await withWorker(backend, configure: configure(receiver, port: client.port!)) { worker in
                let queued = try await worker.enqueue()
                let finished = try await worker.waitUntilFinished(queued.id)
                #expect(finished.status == .failed)
                #expect(finished.error?.contains("webhook failed after 4 attempts") == true)
                #expect(receiver.deliveries.withLockedValue { $0.count } == 4)
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func aRedirectIsAFailedDeliveryNotFollowed(backend: TestBackend) async throws {
        let receiver = WebhookReceiver(script: [])
        try await receiver.application().test(.live) { client in
            try await withWorker(backend, configure: configure(receiver, port: client.port!, path: "/moved")) { worker in
                let queued = try await worker.enqueue()
                let finished = try await worker.waitUntilFinished(queued.id)
                #expect(finished.status == .failed)
                #expect(finished.error?.contains("HTTP 302") == true, "\(finished.error ?? "")")
                #expect(receiver.elsewhere.withLockedValue { $0 } == 0, "the redirect was not followed")
                let accepted = try await worker.events(queued.id).contains { $0.message.contains("accepted") }
                #expect(!accepted)
            }
        }
    }

    @Test func aSecretShorterThan32BytesIsAConfigurationError() throws {
        func settings(secret: String) throws(ConfigurationError) -> WorkerSettings {
            try WorkerSettings(
                from: EnvironmentSettings(environment: [
                    "DATABASE_URL": "sqlite:///tmp/unused.db", "CODE_ROLLOUT_DRIVER": "webhook",
                    "CODE_WEBHOOK_URL": "https://cd.example.com/hooks", "CODE_WEBHOOK_SECRET": secret,
                ]))
        }
        #expect(throws: ConfigurationError.self) { try settings(secret: String(repeating: "s", count: 31)) }
        do {
            _ = try settings(secret: String(repeating: "s", count: 31))
        } catch {
            #expect(error.variable == "CODE_WEBHOOK_SECRET")
            #expect(error.reason.contains("32 bytes"))
        }
        _ = try settings(secret: String(repeating: "s", count: 32))
    }

    @Test func signatureIsHMACSHA256OfTimestampDotBody() {
        // Known answer from `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key`.
        let signature = WebhookDriver.signature(of: Data(#"{"a":1}"#.utf8), timestamp: 1_700_000_000, secret: "key")
        #expect(signature == "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03")
        #expect(WebhookDriver.signature(of: Data(#"{"a":1}"#.utf8), timestamp: 1_700_000_001, secret: "key") != signature)
        #expect(
            WebhookReceiver.verify(
                body: Data(#"{"a":1}"#.utf8), timestamp: "1700000000", signature: signature, secret: "key",
                now: Date(timeIntervalSince1970: 1_700_000_000 + 299)))
        #expect(
            !WebhookReceiver.verify(
                body: Data(#"{"a":1}"#.utf8), timestamp: "1700000000", signature: signature, secret: "key",
                now: Date(timeIntervalSince1970: 1_700_000_000 + 301)), "outside the replay window")
    }
}
