import Hummingbird
import NIOCore

/// Reads each request body into memory up to `limit` bytes before the handler runs, and answers 413
/// `payload_too_large` beyond it, whatever the handler does with the body afterwards (decoding code
/// generated from an OpenAPI document reads a body without a bound of its own).
public struct RequestBodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int

    public init(limit: Int = JSONBody.defaultLimit) {
        self.limit = limit
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        do {
            _ = try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ServiceError(.contentTooLarge, code: "payload_too_large", detail: "The request body exceeds \(limit) bytes.")
        }
        return try await next(request, context)
    }
}
