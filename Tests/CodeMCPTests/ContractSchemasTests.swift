import CodeAPIContract
import MCP
import Testing
import Yams

@testable import CodeMCP

/// The contract as JSON values, read from its YAML without `YAMLDecoder` (ContractSchemas.value(of:)).
@Suite("Contract schemas")
struct ContractSchemasTests {
    /// The bundled contract reads the same as through `YAMLDecoder().decode(Value.self, ...)`, the way it was
    /// read before: every tool's schema stays what it was.
    @Test func theContractReadsAsYAMLDecoderReadsIt() throws {
        let yaml = String(decoding: try ContractDocument.yaml(), as: UTF8.self)
        let decoded = try YAMLDecoder().decode(Value.self, from: yaml)
        let composed = try ContractSchemas.value(of: try #require(try Yams.compose(yaml: yaml)))
        #expect(composed == decoded)
        #expect(composed.objectValue?["paths"]?.objectValue?.isEmpty == false)
    }

    @Test func plainScalarsAreResolvedByTheCoreSchemaAndQuotedOnesAreStrings() throws {
        let yaml = """
            int: 42
            negative: -7
            float: 1.5
            exponent: 1e3
            yes_or_no: true
            no_value: null
            tilde: ~
            word: object
            quoted_int: "42"
            quoted_bool: 'true'
            not_a_number: nan
            version: 1.2.3
            date: 2026-12-03
            list: [1, two, "3"]
            block: |
              text
            """
        let value = try ContractSchemas.value(of: try #require(try Yams.compose(yaml: yaml)))
        let expected: Value = .object([
            "int": .int(42), "negative": .int(-7), "float": .double(1.5), "exponent": .double(1000), "yes_or_no": .bool(true),
            "no_value": .null, "tilde": .null, "word": .string("object"), "quoted_int": .string("42"), "quoted_bool": .string("true"),
            "not_a_number": .string("nan"), "version": .string("1.2.3"), "date": .string("2026-12-03"),
            "list": .array([.int(1), .string("two"), .string("3")]), "block": .string("text"),
        ])
        #expect(value == expected)
    }
}
