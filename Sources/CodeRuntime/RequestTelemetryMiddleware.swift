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
/// - Records `http_requests_total` and `http_request_duration_seconds` by method, route template and status
///   (a streamed body once written).
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
        // The access line of a stream is written after the body, outside the request's span: take its
        // trace_id and span_id (tracing on) into the logger now, when that line is written at all.
        if context.logger.logLevel <= .info, let spanIDs = context.logger.metadataProvider?.get() {
            for (key, value) in spanIDs { context.logger[metadataKey: key] = value }
        }

        var response: Response
        do {
            let scope = RequestScope(logger: context.logger, requestID: requestID)
            response = try await RequestScope.$current.withValue(scope) { try await next(request, context) }
        } catch let error as HTTPError where error.status == .notFound && Self.isUnmatched(context) {
            // No route for this method: a path that exists with other methods gets 405 and `Allow`.
            let allowed = routes.methods(matching: request.uri.path)
            let problem =
                allowed.isEmpty
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
        if response.body.contentLength != nil {
            do {
                response.body = try await response.body.collected(limit: Self.collectedBodyLimit)
            } catch {
                // The body failed before anything was sent: answer with the problem instead of a broken body.
                context.logger.error("response body failed", metadata: ["error": .string(String(reflecting: error))])
                response = ServiceError.from(error).response(requestID: requestID)
            }
        }
        response.headers[.xRequestID] = requestID

        let route = Self.isUnmatched(context) ? "unmatched" : context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        let status = response.status.code
        let logger = context.logger
        let path = request.uri.path
        let metrics = self.metrics
        let record = { @Sendable in
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
        // A stream (no length: MCP's event streams) is recorded once written, so it is measured in full. A
        // body of known length is collected into one buffer (see `collected`; up to 1 MiB, a larger one is
        // sent as it is) and recorded now, with the status it is sent with: wrapping it
        // would turn Hummingbird's one write of head and body into three writes and flushes (30 % of the
        // CPU of a small request, docs/performance.md).
        if response.body.contentLength == nil {
            response.body = response.body.afterWriting(record)
        } else {
            record()
        }
        return response
    }
}

extension RequestTelemetryMiddleware {
    /// Bodies of known length up to this size are sent as one buffer with their head.
    static var collectedBodyLimit: Int { 1 << 20 }

    /// Whether no route matched: Hummingbird's not-found responder marks the endpoint `NotFound`.
    static func isUnmatched(_ context: Context) -> Bool {
        context.endpointPath == nil || context.endpointPath == "NotFound"
    }
}
