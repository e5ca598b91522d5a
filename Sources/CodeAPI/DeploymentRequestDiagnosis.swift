import CodeDomain
import CodeRuntime
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// Reports every invalid field of a deployment request at once. The generated decoder stops at the first
/// field it cannot decode (an environment outside the enum, say); when it does, the same bytes are read
/// again leniently and validated by the domain, whose 422 lists each field. A valid request pays only
/// for keeping its bytes, which the body limit has already read into memory.
struct DeploymentRequestDiagnosis: ServerMiddleware {
    static let operations: Set<String> = ["createDeployment", "validateDeployment"]

    func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        metadata: ServerRequestMetadata,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard Self.operations.contains(operationID), let body else { return try await next(request, body, metadata) }
        let bytes = try await Data(collecting: body, upTo: JSONBody.defaultLimit)
        do {
            return try await next(request, HTTPBody(bytes), metadata)
        } catch let error as ServerError where error.underlyingError is DecodingError {
            throw Self.diagnosis(of: bytes) ?? error
        }
    }

    /// The domain's 422 for `bytes` when they are JSON of the request's shape with invalid values; nil
    /// when the generated decoder's own error says it best (not JSON, a missing field, a wrong type).
    static func diagnosis(of bytes: Data) -> ServiceError? {
        guard let request = try? JSONBody.decode(DeploymentRequest.self, from: bytes),
            case .failure(let failure) = DeploymentSpec.validate(request)
        else { return nil }
        return .validation(failure.violations.map { .init(field: $0.field, message: $0.message) })
    }
}
