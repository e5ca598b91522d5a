import CodeAPIContract
import HTTPTypes
@_spi(Generated) import OpenAPIRuntime

// The generated server (this module's Server.swift) writes each JSON response with
// `converter.setResponseBodyAsJSON(value, headerFields:contentType:)`. For a value of a schema marked
// `ContractResponseBody`, Swift picks this overload over the runtime's `<T: Encodable>` one (a more
// constrained generic wins), so those bodies are written by `ContractJSONEncoder` rather than by the
// runtime's `JSONEncoder`, which was 46 % of a list's CPU (docs/performance.md, nineteenth round).
// It sets the same headers as the runtime's, and leaves a configuration whose options the streaming encoder
// does not write (sorted keys, pretty printing) to the runtime's encoder. The extension uses the runtime's
// `Generated` SPI, as the generated code itself does.
extension Converter {
    func setResponseBodyAsJSON<T: ContractResponseBody>(_ value: T, headerFields: inout HTTPFields, contentType: String) throws
        -> HTTPBody
    {
        guard configuration.jsonEncodingOptions == ContractJSONEncoder.options else {
            // Options the streaming encoder does not write (sorted keys, pretty printing): the runtime's way.
            return try setResponseBodyAsJSON(EncodedByTheRuntime(value: value), headerFields: &headerFields, contentType: contentType)
        }
        let bytes = try ContractJSONEncoder(dateTranscoder: configuration.dateTranscoder).encode(value)
        headerFields[.contentType] = contentType
        headerFields[.contentLength] = String(bytes.count)
        return HTTPBody(bytes)
    }
}

/// The body and headers the generated server writes for `value` under `configuration`, through the
/// overload above (for tests: an extension of the runtime's SPI type is not visible to other modules).
package func contractResponseBody<T: ContractResponseBody>(
    _ value: T, configuration: Configuration, contentType: String
) throws -> (HTTPBody, HTTPFields) {
    var headerFields = HTTPFields()
    let body = try Converter(configuration: configuration).setResponseBodyAsJSON(
        value, headerFields: &headerFields, contentType: contentType)
    return (body, headerFields)
}

/// A response body without the mark, so that the runtime's overload writes it.
private struct EncodedByTheRuntime<Body: Encodable>: Encodable {
    let value: Body

    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
    }
}
