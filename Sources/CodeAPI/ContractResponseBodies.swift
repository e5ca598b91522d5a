import CodeAPIContract
import HTTPTypes
@_spi(Generated) import OpenAPIRuntime

// The generated server (this module's Server.swift) writes each JSON response with
// `converter.setResponseBodyAsJSON(value, headerFields:contentType:)`. For a value of a schema marked
// `ContractResponseBody`, Swift picks this overload over the runtime's `<T: Encodable>` one (a more
// constrained generic wins), so those bodies are written by `ContractJSONEncoder` rather than by the
// runtime's `JSONEncoder`, which was 46 % of a list's CPU (docs/performance.md, nineteenth round).
// It sets the same headers as the runtime's. The extension uses the runtime's `Generated` SPI, as the
// generated code itself does.
extension Converter {
    func setResponseBodyAsJSON<T: ContractResponseBody>(_ value: T, headerFields: inout HTTPFields, contentType: String) throws
        -> HTTPBody
    {
        let bytes = try ContractJSONEncoder(dateTranscoder: configuration.dateTranscoder).encode(value)
        headerFields[.contentType] = contentType
        headerFields[.contentLength] = String(bytes.count)
        return HTTPBody(bytes)
    }
}
