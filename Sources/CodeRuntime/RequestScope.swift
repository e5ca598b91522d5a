import Logging

/// The request being served, for code that runs inside a handler but is not given the Hummingbird
/// context: handlers generated from an OpenAPI document receive only their typed input. The telemetry
/// middleware sets it around every request, so such code logs with the request's id.
public struct RequestScope: Sendable {
    /// The request's logger, whose metadata carries `request_id`.
    public let logger: Logger
    public let requestID: String

    @TaskLocal public static var current: RequestScope?

    /// The current request's logger, or `fallback` outside a request.
    public static func logger(or fallback: Logger) -> Logger {
        current?.logger ?? fallback
    }
}
