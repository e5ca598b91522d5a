import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The outer edge of every request: request id, problem responses, metrics and the access log.
///
/// - Accepts the client's `X-Request-ID` when it is short and made of safe characters, otherwise
///   generates one; echoes it on the response and puts it into the logger metadata, so every log line of
///   the request carries it (Hummingbird's `context.id` reads the same value).
/// - Turns every thrown error into an `application/problem+json` response with a stable code. Errors
///   without a known problem become a generic 500 and are logged with their details on the server only.
/// - Records `http_requests_total` and `http_request_duration_seconds` by method, route template and status.
/// - Logs one line per request with method, route, path, status, duration and request id.
///
/// Add it to the router before any route: Hummingbird wraps routes with the middleware present when
/// they are registered.
public struct RequestTelemetryMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServiceMetrics

    public init(metrics: ServiceMetrics) {
        self.metrics = metrics
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let requestID = RequestIdentifier.accepting(request.headers[.xRequestID])
        var context = context
        context.logger[metadataKey: RequestIdentifier.metadataKey] = .string(requestID)

        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let problem = ServiceError.from(error)
            if problem.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": .string(String(reflecting: error))])
            }
            response = problem.response(requestID: requestID)
        }
        response.headers[.xRequestID] = requestID

        let route = context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        let status = response.status.code
        let logger = context.logger
        let path = request.uri.path
        let metrics = self.metrics
        // Record when the body has been written, so streamed responses are measured in full.
        response.body = response.body.afterWriting {
            let elapsed = ContinuousClock.now - start
            let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
            metrics.recordRequest(method: method, route: route, status: status, nanoseconds: nanoseconds)
            logger.info(
                "request",
                metadata: [
                    "method": .string(method),
                    "route": .string(route),
                    "path": .string(path),
                    "status": .stringConvertible(status),
                    "duration_ms": .stringConvertible(Double(nanoseconds / 1000) / 1000),
                ]
            )
        }
        return response
    }
}

public enum RequestIdentifier {
    /// Hummingbird's own key, so that `context.id` and our logs agree.
    public static let metadataKey = "hb.request.id"
    public static let maximumLength = 128

    /// The client's id when it is 1-128 characters of `A-Z a-z 0-9 . _ : -`, else a new UUID. Anything
    /// else could forge log lines or smuggle header content into downstream systems.
    public static func accepting(_ candidate: String?) -> String {
        if let candidate, isAcceptable(candidate) { return candidate }
        return UUID().uuidString.lowercased()
    }

    public static func isAcceptable(_ candidate: String) -> Bool {
        guard (1...maximumLength).contains(candidate.utf8.count) else { return false }
        return candidate.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }
}

extension HTTPField.Name {
    public static let xRequestID = HTTPField.Name("X-Request-ID")!
}

extension RequestContext {
    /// The request id the telemetry middleware assigned.
    public var requestID: String? {
        logger[metadataKey: RequestIdentifier.metadataKey].map { "\($0)" }
    }
}

extension ResponseBody {
    /// The same body, calling `completion` once it has been written or writing failed. (Hummingbird has
    /// this as `withPostWriteClosure`, but only for its own package.)
    func afterWriting(_ completion: @escaping @Sendable () -> Void) -> ResponseBody {
        let body = self
        return ResponseBody(contentLength: body.contentLength) { writer in
            defer { completion() }
            try await body.write(writer)
        }
    }
}
