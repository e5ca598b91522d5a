import Foundation

/// Settings each service needs to start for a test, in a directory the test owns.
public enum ServiceFixtures {
    /// A well-formed admin key for tests that start code-api as a process.
    public static let adminKey = "code_" + String(repeating: "A", count: 43)
    /// The operator key code-api creates for code-mcp from `CODE_MCP_API_KEY`.
    public static let mcpKey = "code_" + String(repeating: "M", count: 43)

    public static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("code-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// The least configuration with which `service` starts.
    public static func minimalEnvironment(for service: String, directory: URL) -> [String: String] {
        switch service {
        case "code-api":
            return ["DATABASE_URL": "sqlite://\(directory.path)/code.db", "CODE_ADMIN_KEY": adminKey, "CODE_MCP_API_KEY": mcpKey]
        case "code-worker":
            return ["DATABASE_URL": "sqlite://\(directory.path)/code.db"]
        case "code-mcp":
            return ["MCP_API_KEY": mcpKey, "MCP_AUTH_TOKENS": "executable-test-token-0123456789"]
        default:
            return [:]
        }
    }
}
