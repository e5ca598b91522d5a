import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers

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
    let routes: RouteTable

    public init(metrics: ServiceMetrics, routes: RouteTable) {
        self.metrics = metrics
        self.routes = routes
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let requestID = RequestIdentifier.accepting(request.headers[.xRequestID])
        var context = context
        context.logger[metadataKey: RequestIdentifier.metadataKey] = .string(requestID)

        var response: Response
        do {
            let scope = RequestScope(logger: context.logger, requestID: requestID)
            response = try await RequestScope.$current.withValue(scope) { try await next(request, context) }
        } catch let error as HTTPError where error.status == .notFound && Self.isUnmatched(context) {
            // No route for this method: a path that exists with other methods gets 405 and `Allow`.
            let allowed = routes.methods(matching: request.uri.path)
            let problem = allowed.isEmpty
                ? ServiceError.from(error)
                : ServiceError(
                    .methodNotAllowed, code: "method_not_allowed",
                    detail: "\(request.method.rawValue) is not allowed here.",
                    headers: [.allow: allowed.joined(separator: ", ")]
                )
            response = problem.response(requestID: requestID)
        } catch {
            let problem = ServiceError.from(error)
            if problem.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": .string(String(reflecting: error))])
            }
            response = problem.response(requestID: requestID)
        }
        response.headers[.xRequestID] = requestID

        let route = Self.isUnmatched(context) ? "unmatched" : context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        let status = response.status.code
        let logger = context.logger
        let path = request.uri.path
        let metrics = self.metrics
        // Record when the body has been written, so streamed responses are measured in full.
        response.body = response.body.afterWriting {
            let elapsed = ContinuousClock.now - start
            metrics.recordRequest(method: method, route: route, status: status, duration: elapsed)
            logger.info(
                "request",
                metadata: [
                    "method": .string(method),
                    "route": .string(route),
                    "path": .string(path),
                    "status": .stringConvertible(status),
                    "duration_ms": .stringConvertible((elapsed / .microseconds(1)).rounded() / 1000),
                ]
            )
        }
        return response
    }
}

extension RequestTelemetryMiddleware {
    /// Whether no route matched: Hummingbird's not-found responder marks the endpoint `NotFound`.
    static func isUnmatched(_ context: Context) -> Bool {
        context.endpointPath == nil || context.endpointPath == "NotFound"
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

/// The routes of a router, by path template, to answer 405 with `Allow` for a known path and an unknown
/// method (Hummingbird's router answers 404 for both). Filled once the routes are registered.
public final class RouteTable: Sendable {
    private let templates = NIOLockedValueBox<[(segments: [Substring], methods: [String])]>([])

    public init() {}

    func load(_ routes: [(path: String, method: String)]) {
        var byPath: [String: Set<String>] = [:]
        for route in routes { byPath[route.path, default: []].insert(route.method) }
        templates.withLockedValue { templates in
            templates = byPath.map { path, methods in (path.split(separator: "/"), methods.sorted()) }
        }
    }

    /// Methods of the route template that `path` matches, `{name}` matching any one segment. Where several
    /// match, the router would pick the one with literal segments first, so that one answers.
    func methods(matching path: String) -> [String] {
        let segments = path.split(separator: "/")
        func isCapture(_ pattern: Substring) -> Bool { pattern.hasPrefix("{") && pattern.hasSuffix("}") }
        let matching = templates.withLockedValue { templates in
            templates.filter { template in
                template.segments.count == segments.count
                    && zip(template.segments, segments).allSatisfy { pattern, segment in isCapture(pattern) || pattern == segment }
            }
        }
        // Literal segments win from the left, as in Hummingbird's trie.
        let best = matching.max { lhs, rhs in
            let left = lhs.segments.map { isCapture($0) ? 0 : 1 }
            let right = rhs.segments.map { isCapture($0) ? 0 : 1 }
            return left.lexicographicallyPrecedes(right)
        }
        return best?.methods ?? []
    }
}

