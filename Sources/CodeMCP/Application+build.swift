import CodeRuntime
import Hummingbird
import Logging

/// Settings of code-mcp beyond the shared runtime settings.
public struct MCPSettings: Sendable {
    public init() {}

    public init(from environment: EnvironmentSettings) throws(ConfigurationError) {
        self.init()
    }
}

/// Builds code-mcp: the router, its middleware and the services it runs. Called by `main` and by tests.
public func buildApplication(settings: MCPSettings, runtime: ServiceRuntime) async throws -> some ApplicationProtocol {
    let router = runtime.makeRouter(context: BasicRequestContext.self)
    return runtime.makeApplication(router: router)
}
