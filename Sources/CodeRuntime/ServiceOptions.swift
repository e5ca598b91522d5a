import ArgumentParser

/// Options every service executable accepts.
public struct ServiceOptions: ParsableArguments {
    @Flag(
        help:
            "Check readiness of the service running on this host (GET /health/ready on PORT, 2 s timeout); exit 0 when ready, 1 otherwise. The HEALTHCHECK of images without a shell."
    )
    public var healthCheck = false

    public init() {}
}
