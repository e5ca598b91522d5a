import Foundation
import HTTPTypes
import OpenAPIRuntime

/// Undoes the percent-encoding swift-openapi-runtime applies to every response header value it sets
/// (apple/swift-openapi-generator#857), for `Location`, a URI reference that clients follow as it is:
/// `/v1/deployments/dep_1`, not `%2Fv1%2Fdeployments%2Fdep_1`. Innermost, so that the audit log reads the
/// decoded value too.
struct LocationHeaderDecoding: ServerMiddleware {
    func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        metadata: ServerRequestMetadata,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var (response, responseBody) = try await next(request, body, metadata)
        if let location = response.headerFields[.location], let decoded = location.removingPercentEncoding {
            response.headerFields[.location] = decoded
        }
        return (response, responseBody)
    }
}
