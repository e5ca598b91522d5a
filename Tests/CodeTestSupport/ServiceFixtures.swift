import Foundation

/// Settings each service needs to start for a test, in a directory the test owns.
public enum ServiceFixtures {
    public static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("code-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// The least configuration with which `service` starts.
    public static func minimalEnvironment(for service: String, directory: URL) -> [String: String] {
        switch service {
        default:
            return [:]
        }
    }
}
