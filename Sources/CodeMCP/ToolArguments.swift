import Foundation
import MCP

/// Reads tool arguments into a Decodable input, refusing unknown keys and wrong types with -32602.
enum ToolArguments {
    static func decode<Input: Decodable>(_ type: Input.Type, _ arguments: [String: Value]?, allowed: Set<String>, tool: String) throws
        -> Input
    {
        let arguments = arguments ?? [:]
        if let unknown = arguments.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw MCPError.invalidParams("\(tool): unknown argument '\(unknown)'")
        }
        do {
            return try JSONDecoder().decode(Input.self, from: JSONEncoder().encode(arguments))
        } catch DecodingError.keyNotFound(let key, _) {
            throw MCPError.invalidParams("\(tool): missing argument '\(key.stringValue)'")
        } catch DecodingError.typeMismatch(_, let context) {
            throw MCPError.invalidParams("\(tool): argument '\(path(context))' has the wrong type")
        } catch DecodingError.dataCorrupted(let context) {
            throw MCPError.invalidParams("\(tool): argument '\(path(context))' has a value the API does not accept")
        } catch {
            throw MCPError.invalidParams("\(tool): invalid arguments")
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map(\.stringValue).joined(separator: ".")
    }

    /// Deployment ids are code-api's own (`dep_` and hex): anything else cannot name one.
    static func deploymentID(_ id: String, tool: String) throws -> String {
        guard (1...100).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw MCPError.invalidParams("\(tool): 'id' is not a deployment id")
        }
        return id
    }
}
