import CodeRuntime
import Hummingbird
import Logging

/// Settings of code-worker beyond the shared runtime settings.
public struct WorkerSettings: Sendable {
    public init() {}

    public init(from environment: EnvironmentSettings) throws(ConfigurationError) {
        self.init()
    }
}

/// Builds code-worker: the router, its middleware and the services it runs. Called by `main` and by tests.
public func buildApplication(settings: WorkerSettings, runtime: ServiceRuntime) async throws -> some ApplicationProtocol {
    let router = runtime.makeRouter(context: BasicRequestContext.self)
    return runtime.makeApplication(router: router)
}
