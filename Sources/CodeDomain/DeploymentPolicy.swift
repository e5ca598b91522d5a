/// The deployment policy: rules every deployment must satisfy, checked by code-api when a deployment is
/// created and again by code-worker before it renders anything (the policy may have changed in between,
/// and a worker must not trust what it reads from a shared database).
///
/// Rule ids are stable: clients, dashboards and the MCP server's `code://policy` resource refer to them.
public struct DeploymentPolicy: Sendable, Equatable {
    public struct Rule: Sendable, Equatable, Codable {
        public let id: String
        public let title: String
        public let description: String
    }

    public struct Violation: Sendable, Equatable, Codable, Error {
        public let rule: String
        public let message: String
    }

    public static let productionRequiresDigest = Rule(
        id: "production-requires-digest",
        title: "Production images are pinned by digest",
        description: "A production deployment names its image by digest (image@sha256:...), so what was tested is what runs."
    )
    public static let noMutableTagOutsideDevelopment = Rule(
        id: "no-latest-outside-development",
        title: "No 'latest' or missing tag outside development",
        description: "Staging and production deployments name an explicit tag other than 'latest', or a digest."
    )
    public static let registryAllowlist = Rule(
        id: "registry-allowlist",
        title: "Images come from allowed registries",
        description: "When CODE_ALLOWED_REGISTRIES is set, the image's registry is one of its entries."
    )

    public static let rules = [productionRequiresDigest, noMutableTagOutsideDevelopment, registryAllowlist]

    /// Registries images may come from (lowercased `host[:port]`); nil allows every registry.
    public let allowedRegistries: Set<String>?

    public init(allowedRegistries: [String]? = nil) {
        let normalized = allowedRegistries.map { Set($0.map { $0.lowercased() }) }
        self.allowedRegistries = normalized?.isEmpty == true ? nil : normalized
    }

    public func evaluate(image: ImageReference, environment: DeploymentEnvironment) -> [Violation] {
        var violations: [Violation] = []
        if environment == .production, !image.isDigestPinned {
            violations.append(
                Violation(
                    rule: Self.productionRequiresDigest.id,
                    message: "production deployments must pin the image by digest; '\(image)' has none"
                ))
        }
        if environment != .development, !image.isDigestPinned, image.tag == nil || image.tag == "latest" {
            violations.append(
                Violation(
                    rule: Self.noMutableTagOutsideDevelopment.id,
                    message:
                        "\(environment.rawValue) deployments must name a tag other than 'latest' (or a digest); '\(image)' has \(image.tag == nil ? "no tag" : "'latest'")"
                ))
        }
        if let allowedRegistries, !allowedRegistries.contains(image.registry.lowercased()) {
            violations.append(
                Violation(
                    rule: Self.registryAllowlist.id,
                    message: "registry '\(image.registry)' is not allowed; allowed: \(allowedRegistries.sorted().joined(separator: ", "))"
                ))
        }
        return violations
    }

    public func evaluate(_ spec: DeploymentSpec) -> [Violation] {
        evaluate(image: spec.image, environment: spec.environment)
    }
}
