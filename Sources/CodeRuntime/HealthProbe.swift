import AsyncHTTPClient
import Foundation
import NIOCore

/// One HTTP GET with a deadline, for health checks of this and other services.
public enum HealthProbe {
    public struct Outcome: Sendable {
        public let healthy: Bool
        public let status: Int?
        public let summary: String
        /// The answer's body (at most 64 KiB), e.g. a readiness report.
        public let body: Data?
    }

    /// The client of readiness checks: tracing off, because they run every few seconds outside any request and
    /// each would start a trace of its own. It lives as long as the process.
    public static let untracedClient = makeClient(traced: false)

    /// The client of probes made while serving a request (code-mcp's `service_health`): its span is a child
    /// of the request's.
    public static let tracedClient = makeClient(traced: true)

    /// A refused connection is the answer: async-http-client would otherwise retry connecting until the
    /// deadline, and a probe of a service that is not running would take its whole timeout to say so.
    private static func makeClient(traced: Bool) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        if !traced { configuration.tracing.tracer = nil }
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public static func probe(url: String, timeout: Duration, client: HTTPClient = untracedClient) async -> Outcome {
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            let response = try await client.execute(request, timeout: TimeAmount(timeout))
            let status = Int(response.status.code)
            let body = try? await response.body.collect(upTo: 64 * 1024)
            return Outcome(
                healthy: (200..<300).contains(status), status: status, summary: "HTTP \(status)", body: body.map { Data(buffer: $0) })
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return Outcome(healthy: false, status: nil, summary: "no answer within \(timeout)", body: nil)
        } catch {
            return Outcome(healthy: false, status: nil, summary: "\(error)", body: nil)
        }
    }
}
