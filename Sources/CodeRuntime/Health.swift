import Foundation
import Hummingbird
import NIOConcurrencyHelpers

/// Readiness checks with Kubernetes semantics.
///
/// `/health` and `/health/live` answer 200 while the process serves requests: liveness never depends on
/// other systems, or an outage of the database would make the orchestrator restart every replica.
/// `/health/ready` runs every registered check concurrently, each bounded by its timeout, and answers 503
/// when any fails, so traffic is routed elsewhere until the dependency is back.
public final class HealthChecks: Sendable {
    public struct Check: Sendable {
        public let name: String
        public let timeout: Duration
        public let run: @Sendable () async throws -> Void
    }

    public struct Result: Codable, Sendable, Equatable {
        public let name: String
        public let status: String
        public let durationMs: Double
        public let error: String?

        enum CodingKeys: String, CodingKey {
            case name, status, error
            case durationMs = "duration_ms"
        }
    }

    public struct Report: Codable, Sendable {
        public let status: String
        public let service: String
        public let checks: [Result]
        public var isReady: Bool { status == "ready" }
    }

    public let service: String
    private let checks = NIOLockedValueBox<[Check]>([])

    public init(service: String) {
        self.service = service
    }

    /// Registers a check. A check passes by returning and fails by throwing; its error's description is
    /// reported, so throw errors whose messages are safe to show (no secrets, no connection strings).
    public func register(_ name: String, timeout: Duration = .seconds(2), _ run: @escaping @Sendable () async throws -> Void) {
        checks.withLockedValue { $0.append(Check(name: name, timeout: timeout, run: run)) }
    }

    public func readiness() async -> Report {
        let checks = self.checks.withLockedValue { $0 }
        let results = await withTaskGroup(of: (Int, Result).self) { group in
            for (index, check) in checks.enumerated() {
                group.addTask { (index, await Self.run(check)) }
            }
            var results = [Result?](repeating: nil, count: checks.count)
            for await (index, result) in group {
                results[index] = result
            }
            return results.compactMap { $0 }
        }
        let ready = results.allSatisfy { $0.status == "ok" }
        return Report(status: ready ? "ready" : "not_ready", service: service, checks: results)
    }

    private static func run(_ check: Check) async -> Result {
        let clock = ContinuousClock()
        let start = clock.now
        let failure: String?
        do {
            try await withDeadline(check.timeout) { try await check.run() }
            failure = nil
        } catch is DeadlineExceeded {
            failure = "timed out after \(check.timeout)"
        } catch {
            failure = String(describing: error)
        }
        let elapsed = clock.now - start
        return Result(
            name: check.name,
            status: failure == nil ? "ok" : "failed",
            durationMs: (elapsed / .microseconds(1)).rounded() / 1000,
            error: failure
        )
    }

    /// Adds `/health`, `/health/live` and `/health/ready` to a router. They take no authentication: put
    /// authenticating middleware on route groups, not in front of these.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        // The liveness answer never changes while the process runs: encoded once here, not per probe (JSON
        // encoding was 4.6 % of the CPU of a /health/live under load, docs/performance.md).
        let live = HealthStatus(status: "ok", service: service, version: BuildInfo.version).response()
        router.get("/health") { _, _ in live }
        router.get("/health/live") { _, _ in live }
        router.get("/health/ready") { request, context -> Response in
            let report = await self.readiness()
            return try context.responseEncoder.encode(report, from: request, context: context)
                .with(status: report.isReady ? .ok : .serviceUnavailable)
        }
    }
}

struct HealthStatus: Encodable {
    let status: String
    let service: String
    let version: String

    /// The 200 answer with this status as its JSON body. Three strings always encode.
    func response() -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try! encoder.encode(self)
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}

extension HealthChecks.Report: ResponseEncodable {}

extension Response {
    func with(status: HTTPResponse.Status) -> Response {
        var response = self
        response.status = status
        return response
    }
}
