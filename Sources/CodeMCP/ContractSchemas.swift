import CodeAPIContract
import Foundation
import MCP
import Yams

/// The JSON Schemas of the API contract (openapi.yaml, a resource of CodeAPIContract), for the
/// tools' input and output schemas. A tool takes and returns what the API does, so its schemas are the
/// API's own, with every `$ref` inlined: they cannot drift apart.
struct ContractSchemas: Sendable {
    private let components: [String: Value]
    private let paths: [String: Value]

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    init(yaml: String) throws {
        let document = try YAMLDecoder().decode(Value.self, from: yaml)
        guard let components = document.objectValue?["components"]?.objectValue, let paths = document.objectValue?["paths"]?.objectValue
        else { throw Invalid(description: "the contract has no components or no paths") }
        self.components = components
        self.paths = paths
    }

    /// The contract as CodeAPIContract carries it.
    static func bundled() throws -> ContractSchemas {
        try ContractSchemas(yaml: String(decoding: try ContractDocument.yaml(), as: UTF8.self))
    }

    /// `#/components/schemas/<name>`, with its references inlined.
    func schema(_ name: String) throws -> Value {
        try resolve(.object(["$ref": .string("#/components/schemas/\(name)")]))
    }

    /// A property of a component schema, e.g. `Problem`'s `errors`.
    func property(_ name: String, of schema: String) throws -> Value {
        guard let property = try self.schema(schema).objectValue?["properties"]?.objectValue?[name] else {
            throw Invalid(description: "the contract's \(schema) has no property \(name)")
        }
        return property
    }

    /// The schema of a parameter of the operation `operationID` (query, path or header), by its name.
    func parameter(_ name: String, of operationID: String) throws -> Value {
        guard let parameter = try parameters(of: operationID).first(where: { $0.name == name }) else {
            throw Invalid(description: "the contract's operation \(operationID) has no parameter \(name)")
        }
        return parameter.schema
    }

    /// The query and path parameters of an operation, in the contract's order, with their schemas.
    func parameters(of operationID: String, in locations: Set<String> = ["query", "path", "header"]) throws -> [(
        name: String, schema: Value
    )] {
        for item in paths.values {
            guard let operations = item.objectValue else { continue }
            let shared = operations["parameters"]?.arrayValue ?? []
            for (method, operation) in operations where method != "parameters" {
                guard operation.objectValue?["operationId"]?.stringValue == operationID else { continue }
                let own = operation.objectValue?["parameters"]?.arrayValue ?? []
                return try (shared + own).map { try resolve($0) }.compactMap { parameter in
                    guard let object = parameter.objectValue, let name = object["name"]?.stringValue,
                        let location = object["in"]?.stringValue, locations.contains(location), let schema = object["schema"]
                    else { return nil }
                    var described = schema.objectValue ?? [:]
                    if described["description"] == nil, let description = object["description"] { described["description"] = description }
                    return (name, .object(described))
                }
            }
        }
        throw Invalid(description: "the contract has no operation \(operationID)")
    }

    /// `value` with every local `$ref` (`#/components/<kind>/<name>`) replaced by what it names.
    func resolve(_ value: Value, depth: Int = 0) throws -> Value {
        guard depth < 32 else { throw Invalid(description: "the contract's references nest too deeply (a cycle?)") }
        switch value {
        case .object(let object):
            if case .string(let reference)? = object["$ref"] {
                let parts = reference.split(separator: "/").map(String.init)
                guard parts.count == 4, parts[0] == "#", parts[1] == "components",
                    let target = components[parts[2]]?.objectValue?[parts[3]]
                else { throw Invalid(description: "the contract's reference \(reference) names nothing") }
                return try resolve(target, depth: depth + 1)
            }
            return .object(try object.mapValues { try resolve($0, depth: depth + 1) })
        case .array(let array):
            return .array(try array.map { try resolve($0, depth: depth + 1) })
        default:
            return value
        }
    }
}
