import Foundation
import HTTPTypes

/// The contract itself, openapi.yaml, as a resource of this module: code-api serves it at
/// `/openapi.yaml` and code-mcp takes its tools' schemas from it.
public enum ContractDocument {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String { "the CodeAPIContract resource openapi.yaml is missing from the installation" }
    }

    public static func yaml() throws -> Data {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml") else { throw Missing() }
        return try Data(contentsOf: url)
    }
}

extension HTTPField.Name {
    /// `X-Code-Client`: the label a caller gives itself, which code-api records with each audit entry
    /// (`AuditEntry.client` in the contract); code-mcp sends `mcp:` and its MCP client's token label.
    public static let codeClient = Self("X-Code-Client")!
}
