import CodeRuntime
import Foundation
import Hummingbird

/// The example route of the template: `POST /v1/greetings` with `{"name": "..."}` answers 201 with a
/// greeting. Errors are problem+json with stable codes: 415 `unsupported_media_type`, 413
/// `payload_too_large`, 400 `malformed_json`, 422 `validation_failed` naming the field, and 401
/// `unauthorized` from the token middleware. Replace it with the service's own routes.
struct GreetingRoutes: Sendable {
    struct GreetingRequest: Decodable, Sendable {
        let name: String
    }

    struct Greeting: ResponseEncodable, Sendable {
        let message: String
    }

    /// Names are short: a longer one is a client error, not something to store or echo.
    static let maximumNameLength = 64

    func add<Context: RequestContext>(to group: RouterGroup<Context>) {
        group.post("/greetings") { request, _ -> EditedResponse<Greeting> in
            let body = try await JSONBody.decode(GreetingRequest.self, from: request, limit: 4 * 1024)
            let name = body.name.trimmingCharacters(in: .whitespaces)
            guard (1...Self.maximumNameLength).contains(name.count) else {
                throw ServiceError.validation([.init(field: "name", message: "must have 1 to \(Self.maximumNameLength) characters")])
            }
            return EditedResponse(status: .created, response: Greeting(message: "Hello, \(name)!"))
        }
    }
}
