import AsyncHTTPClient
import CodeAPIContract
import CodeDomain
import CodeRuntime
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// What a rollout step reports as it goes: each becomes an event of the deployment.
typealias ProgressReporter = @Sendable (_ message: String) async throws -> Void

/// Rolls a deployment out. Drivers check `control` in every wait, so cancellation, a lost lease and
/// shutdown interrupt them promptly.
protocol RolloutDriver: Sendable {
    var name: String { get }
    func rollOut(
        _ deployment: Deployment, attempt: Int, manifests: ManifestRenderer.Rendered, control: PipelineControl, progress: ProgressReporter)
        async throws
}

/// A deterministic stand-in for an orchestrator: each replica takes `step` to update.
struct SimulatedDriver: RolloutDriver {
    let step: Duration
    var name: String { "simulated" }

    func rollOut(
        _ deployment: Deployment, attempt: Int, manifests: ManifestRenderer.Rendered, control: PipelineControl, progress: ProgressReporter
    ) async throws {
        for replica in 1...deployment.replicas {
            try await control.sleep(for: step)
            try await progress("replica \(replica)/\(deployment.replicas) updated (\(deployment.strategy.rawValue))")
        }
    }
}

/// A rollout the driver gave up on, with the reason events and the deployment's `error` show.
struct RolloutFailure: Error, CustomStringConvertible {
    let description: String
}

/// POSTs the manifests as JSON to a URL that performs the rollout (a CD system, a GitOps bridge).
///
/// Each attempt carries `X-Code-Timestamp: <unix seconds>` and `X-Code-Signature: sha256=<hex>`, the
/// HMAC-SHA256 of `<timestamp>.<body>` with the shared secret (the Stripe and Slack scheme): the
/// receiver checks that it came from this worker and, by refusing old timestamps, that it is not a
/// replay (docs/services/code-worker.md). 5xx answers, timeouts and network errors are retried with
/// exponential backoff and full jitter; a 4xx is final, since repeating the same request cannot fix it,
/// and so is a 3xx: redirects are never followed (a followed 302 would turn the POST into a GET that a
/// 2xx would then "accept"). `X-Code-Delivery` is the same for every attempt of one delivery, so a
/// receiver can drop duplicates.
struct WebhookDriver: RolloutDriver {
    let settings: WorkerSettings.WebhookSettings
    /// Its event loop group runs the driver's own client, which follows no redirect.
    let client: HTTPClient
    let metrics: WorkerMetrics
    let logger: Logger
    var name: String { "webhook" }

    static let timestampHeader = "X-Code-Timestamp"
    static let signatureHeader = "X-Code-Signature"
    static let deliveryHeader = "X-Code-Delivery"

    static func signature(of body: Data, timestamp: Int, secret: String) -> String {
        var signed = Data("\(timestamp).".utf8)
        signed.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
        return LowercaseHex.string(prefix: "sha256=", of: mac)
    }

    func rollOut(
        _ deployment: Deployment, attempt: Int, manifests: ManifestRenderer.Rendered, control: PipelineControl, progress: ProgressReporter
    ) async throws {
        let deliveryID = UUID().uuidString.lowercased()
        // The contract's RolloutDelivery (openapi/openapi.yaml, `webhooks`).
        let body = try CodeJSON.encoder.encode(
            Components.Schemas.RolloutDelivery(
                event: .deployment_rollout, deliveryId: deliveryID, deployment: .init(deployment), attempt: attempt,
                manifests: .init(compose: manifests.compose, kubernetes: manifests.kubernetes)
            )
        )
        let client = HTTPClient.withoutRedirects(on: self.client)
        do {
            try await deliver(body, deliveryID: deliveryID, client: client, control: control, progress: progress)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try? await client.shutdown()
    }

    private func deliver(
        _ body: Data, deliveryID: String, client: HTTPClient, control: PipelineControl, progress: ProgressReporter
    ) async throws {
        var backoff = settings.initialBackoff
        for delivery in 1...settings.maxAttempts {
            try control.checkpoint()
            // Signed per attempt: a retry after backoff is still inside the receiver's replay window.
            let timestamp = Int(Date().timeIntervalSince1970)
            var request = HTTPClientRequest(url: settings.url.absoluteString)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "code-worker/\(BuildInfo.version)")
            request.headers.add(name: Self.timestampHeader, value: String(timestamp))
            request.headers.add(name: Self.signatureHeader, value: Self.signature(of: body, timestamp: timestamp, secret: settings.secret))
            request.headers.add(name: Self.deliveryHeader, value: deliveryID)
            request.body = .bytes(ByteBuffer(bytes: body))
            // Only the HTTP exchange is in the `do`: an interruption or cancellation from anywhere else
            // must end the rollout, not count as a network error and deliver again.
            enum Answer {
                case accepted(status: Int)
                case retry(reason: String)
            }
            let answer: Answer
            do {
                let response = try await client.execute(request, timeout: TimeAmount(settings.timeout))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                let status = Int(response.status.code)
                switch status {
                case 200..<300:
                    metrics.webhookAttempts("success").increment()
                    answer = .accepted(status: status)
                case 300..<400:
                    metrics.webhookAttempts("redirect").increment()
                    throw RolloutFailure(description: "webhook answered HTTP \(status), a redirect, which is not followed; not retried")
                case 400..<500 where status != 408 && status != 429:
                    metrics.webhookAttempts("client_error").increment()
                    throw RolloutFailure(description: "webhook refused the rollout with HTTP \(status); not retried")
                default:
                    metrics.webhookAttempts("server_error").increment()
                    answer = .retry(reason: "HTTP \(status)")
                }
            } catch let error as RolloutFailure {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as HTTPClientError where error == .deadlineExceeded {
                metrics.webhookAttempts("timeout").increment()
                answer = .retry(reason: "no answer within \(settings.timeout)")
            } catch {
                metrics.webhookAttempts("network_error").increment()
                answer = .retry(reason: "network error: \(error)")
            }
            let outcome: String
            switch answer {
            case .accepted(let status):
                try await progress("webhook accepted the rollout (HTTP \(status), delivery \(delivery))")
                return
            case .retry(let reason):
                outcome = reason
            }
            guard delivery < settings.maxAttempts else {
                throw RolloutFailure(description: "webhook failed after \(delivery) attempts; last: \(outcome)")
            }
            // Full jitter: a random wait up to the current backoff, so retrying workers do not stampede.
            let wait = backoff * Double.random(in: 0...1)
            try await progress(
                "webhook delivery \(delivery) failed (\(outcome)); retrying in \(wait.formatted(.units(allowed: [.seconds, .milliseconds])))"
            )
            try await control.sleep(for: wait)
            backoff = min(backoff * 2, settings.maximumBackoff)
        }
    }
}

/// Polls `health_url` until it answers 2xx, within `timeout`.
///
/// The URL is the deployment author's, so every poll goes through `HealthURLGuard` first (resolved
/// and vetted again each time, then pinned) on a client of its own that follows no redirect. A
/// rejected address ends the step at once; events record only healthy or unhealthy with the status
/// code, never the body, an error's text or a resolved address.
struct HealthVerifier: Sendable {
    /// Its event loop group runs the per-poll clients.
    let client: HTTPClient
    let timeout: Duration
    let interval: Duration

    enum Poll: Equatable {
        case healthy(status: Int)
        case unhealthy(summary: String)
    }

    func verify(_ url: String, allowlist: HealthURLAllowlist, control: PipelineControl, progress: ProgressReporter) async throws {
        guard let parsed = URL(string: url) else { throw RolloutFailure(description: HealthURLGuard.addressNotAllowed) }
        let deadline = ContinuousClock.now + timeout
        var polls = 0
        var last = "no answer yet"
        while ContinuousClock.now < deadline {
            try control.checkpoint()
            polls += 1
            let remaining = deadline - ContinuousClock.now
            switch try await poll(parsed, allowlist: allowlist, timeout: min(remaining, .seconds(5))) {
            case .healthy(let status):
                try await progress("health_url answered HTTP \(status) (healthy) after \(polls) poll(s)")
                return
            case .unhealthy(let summary):
                last = summary
            }
            try await control.sleep(for: min(interval, max(.zero, deadline - ContinuousClock.now)))
        }
        throw RolloutFailure(description: "health_url did not answer 2xx within \(timeout) (\(polls) polls; last: \(last))")
    }

    /// One GET of `url` after vetting where it leads; throws `RolloutFailure` when it may not be reached.
    func poll(_ url: URL, allowlist: HealthURLAllowlist, timeout: Duration) async throws(RolloutFailure) -> Poll {
        switch await HealthURLGuard(allowlist: allowlist, resolveTimeout: timeout).vet(url) {
        case .rejected(let reason):
            throw RolloutFailure(description: reason)
        case .unresolved:
            return .unhealthy(summary: "host not resolved")
        case .connect(let host, let pinnedAddress):
            // A client per poll: `dnsOverride` pins this poll's vetted address, and no connection
            // outlives the poll to be reused after the name has changed.
            let client = HTTPClient.withoutRedirects(on: self.client, dnsOverride: pinnedAddress.map { [host: $0] } ?? [:])
            let result = await Self.get(url, client: client, timeout: timeout)
            try? await client.shutdown()
            return result
        }
    }

    private static func get(_ url: URL, client: HTTPClient, timeout: Duration) async -> Poll {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        request.headers.add(name: "User-Agent", value: "code-worker/\(BuildInfo.version)")
        do {
            let response = try await client.execute(request, timeout: TimeAmount(timeout))
            // Read a little and drop it: the body is the target's business, never recorded.
            _ = try? await response.body.collect(upTo: 4096)
            let status = Int(response.status.code)
            return (200..<300).contains(status) ? .healthy(status: status) : .unhealthy(summary: "HTTP \(status) (unhealthy)")
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return .unhealthy(summary: "no answer within \(timeout)")
        } catch {
            // The error's text may name addresses or internals of the network: only its class is kept.
            return .unhealthy(summary: "no connection")
        }
    }
}

extension HTTPClient {
    /// A client on `parent`'s event loop group that follows no redirect; the caller shuts it down.
    static func withoutRedirects(on parent: HTTPClient, dnsOverride: [String: String] = [:]) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.dnsOverride = dnsOverride
        return HTTPClient(eventLoopGroup: parent.eventLoopGroup, configuration: configuration)
    }
}

extension Duration {
    /// Whole milliseconds, as events report durations.
    var milliseconds: Int64 { Int64(self / .milliseconds(1)) }
}
