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

/// A real HTTP receiver on loopback that checks the signature and answers from a script.
final class WebhookReceiver: Sendable {
    let secret = "webhook-secret-\(UUID().uuidString)"
    let script: [HTTPResponse.Status]
    let deliveries = NIOLockedValueBox<[(signatureValid: Bool, deliveryID: String?, body: Data)]>([])

    init(script: [HTTPResponse.Status]) {
        self.script = script
    }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.post("/rollouts") { request, _ -> Response in
            let body = Data(buffer: try await request.body.collect(upTo: 1 << 20))
            let expected =
                "sha256="
                + HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(self.secret.utf8)))
                .map { String(format: "%02x", $0) }.joined()
            let signature = request.headers[HTTPField.Name("X-Code-Signature-256")!]
            let index = self.deliveries.withLockedValue { deliveries -> Int in
                deliveries.append((signature == expected, request.headers[HTTPField.Name("X-Code-Delivery")!], body))
                return deliveries.count - 1
            }
            guard signature == expected else { return Response(status: .unauthorized) }
            return Response(status: index < self.script.count ? self.script[index] : .ok)
        }
        return Application(router: router)
    }
}

@Suite("Webhook rollout driver")
struct WebhookDriverTests {
    func configure(_ receiver: WebhookReceiver, port: Int) -> @Sendable (inout WorkerSettings) -> Void {
        { settings in
            settings.rollout = .webhook(
                .init(
                    url: URL(string: "http://127.0.0.1:\(port)/rollouts")!, secret: receiver.secret, timeout: .seconds(2),
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
                #expect(deliveries.count == 3)
                #expect(deliveries.allSatisfy { $0.signatureValid })
                #expect(Set(deliveries.compactMap(\.deliveryID)).count == 1, "retries repeat the delivery id")
                let payload = try JSONSerialization.jsonObject(with: deliveries[0].body) as? [String: Any]
                #expect((payload?["deployment"] as? [String: Any])?["id"] as? String == queued.id)
                #expect(((payload?["manifests"] as? [String: Any])?["kubernetes"] as? String)?.contains("kind: Deployment") == true)
                let retries = try await worker.events(queued.id).filter { $0.step == "rollout" && $0.kind == .info }.map(\.message)
                #expect(retries.count == 3)
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

    @Test func signatureIsHMACSHA256OfTheBody() {
        // Known answer from `printf '{"a":1}' | openssl dgst -sha256 -hmac key`.
        #expect(
            WebhookDriver.signature(of: Data(#"{"a":1}"#.utf8), secret: "key")
                == "sha256=88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342")
    }
}
