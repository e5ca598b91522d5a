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
        // Composed with a resolver of no rules: `value(of:)` resolves plain scalars itself, so the default
        // resolver's seven regular expressions per scalar (and per key hashed in Yams' duplicate-key
        // check) were spent for nothing: 5 % of code-mcp's start-up.
        guard let root = try Yams.compose(yaml: yaml, Resolver.basic) else { throw Invalid(description: "the contract is empty") }
        let document = try Self.value(of: root)
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

    /// A YAML node as a JSON value. Plain scalars are resolved by a subset of YAML 1.2's core schema (null,
    /// booleans, decimal integers and floats; not `0x`/`0o` integers, `.inf` or `.nan`); every other scalar,
    /// and every quoted or block one, is a string. Unlike YAML 1.1 (Yams' decoder), `yes`/`no`/`on`/`off`
    /// are strings; a test checks the bundled contract reads as it did through `YAMLDecoder`.
    ///
    /// Why not `YAMLDecoder().decode(Value.self, ...)`: `Value`'s `Decodable` tries five types on every
    /// scalar, each failure a thrown error, and matches a regular expression against every string (data
    /// URLs); that was half of code-mcp's start-up, ~50 ms (docs/performance.md). The contract has no
    /// anchors or aliases, nor keys other than strings.
    static func value(of node: Node) throws -> Value {
        switch node {
        case .scalar(let scalar):
            return scalar.style == .plain ? plainScalar(scalar.string) : .string(scalar.string)
        case .sequence(let sequence):
            return .array(try sequence.map(value(of:)))
        case .mapping(let mapping):
            var object: [String: Value] = [:]
            for (key, item) in mapping {
                guard let name = key.scalar?.string else { throw Invalid(description: "the contract has a key that is not a string") }
                object[name] = try value(of: item)
            }
            return .object(object)
        case .alias:
            // Yams resolves aliases while composing; one left over is not something the contract uses.
            throw Invalid(description: "the contract uses a YAML alias")
        }
    }

    private static func plainScalar(_ text: String) -> Value {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        // Only text made of a number's characters can be one (Double alone also reads "nan" and "inf").
        guard text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || "+-.eE".utf8.contains($0) }) else {
            return .string(text)
        }
        if let integer = Int(text) { return .int(integer) }
        if let number = Double(text) { return .double(number) }
        return .string(text)
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
