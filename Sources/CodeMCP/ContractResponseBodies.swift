import CodeAPIContract
@_spi(Generated) import OpenAPIRuntime

// The generated client (this module's Client.swift) reads each JSON answer of code-api with
// `converter.getResponseBodyAsJSON(type, from:transforming:)`. For a schema marked `ContractResponseBody`
// (every response body of the contract), Swift picks this overload over the runtime's `<T: Decodable>` one
// (a more constrained generic wins), so code-api's answers are read by `ContractJSONDecoder` rather than by
// the runtime's `JSONDecoder`, which was 27 % of code-mcp's CPU on a `list_deployments` of 20
// (docs/performance.md, twenty-second round). The value is the same, and so are the errors: the decoder
// throws the `DecodingError`s `JSONDecoder` throws, which the generated client wraps as before. The
// extension uses the runtime's `Generated` SPI, as the generated code itself does (and as code-api's
// writing of the same bodies does).
extension Converter {
    func getResponseBodyAsJSON<T: Decodable & ContractResponseBody, C>(
        _ type: T.Type, from data: HTTPBody?, transforming transform: (T) -> C
    ) async throws -> C {
        guard let data else {
            // No body: the runtime's own error for it (its type is internal to the runtime).
            return try await getResponseBodyAsJSON(DecodedByTheRuntime<T>.self, from: nil) { transform($0.value) }
        }
        let bytes = try await [UInt8](collecting: data, upTo: .max)
        return transform(try ContractJSONDecoder(dateTranscoder: configuration.dateTranscoder).decode(T.self, from: bytes))
    }
}

/// A response body without the mark, so that the runtime's overload reads it.
private struct DecodedByTheRuntime<Body: Decodable>: Decodable {
    let value: Body

    init(from decoder: any Decoder) throws {
        value = try Body(from: decoder)
    }
}

/// The value the generated client reads from `body` under `configuration`, through the overload above
/// (for tests: an extension of the runtime's SPI type is not visible to other modules).
func contractResponseValue<T: Decodable & ContractResponseBody>(
    _ type: T.Type, from body: HTTPBody?, configuration: Configuration
) async throws -> T {
    try await Converter(configuration: configuration).getResponseBodyAsJSON(type, from: body) { $0 }
}
