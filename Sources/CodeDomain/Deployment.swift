import Foundation

public enum DeploymentEnvironment: String, Codable, Sendable, CaseIterable {
    case development, staging, production
}

public enum DeploymentStrategy: String, Codable, Sendable, CaseIterable {
    case rolling, recreate
    case blueGreen = "blue_green"
    case canary
}

public enum DeploymentStatus: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .cancelled: true
        case .queued, .running: false
        }
    }
}

/// A field that failed validation, as reported in a 422 problem body.
public struct FieldViolation: Sendable, Equatable, Codable {
    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// The body of `POST /v1/deployments` as sent. Unknown fields are rejected, so that a misspelt optional
/// field (`replica: 3`) is an error instead of a silent default.
public struct DeploymentRequest: Codable, Sendable, Equatable {
    public var service: String
    public var image: String
    public var environment: String
    public var strategy: String?
    public var replicas: Int?
    public var healthURL: String?
    public var labels: [String: String]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case service, image, environment, strategy, replicas, labels
        case healthURL = "health_url"
    }

    public init(
        service: String, image: String, environment: String, strategy: String? = nil,
        replicas: Int? = nil, healthURL: String? = nil, labels: [String: String]? = nil
    ) {
        self.service = service
        self.image = image
        self.environment = environment
        self.strategy = strategy
        self.replicas = replicas
        self.healthURL = healthURL
        self.labels = labels
    }

    public init(from decoder: any Decoder) throws {
        let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
            .filter { CodingKeys(rawValue: $0) == nil }
        if let field = unknown.sorted().first {
            throw DecodingError.dataCorrupted(.init(codingPath: [AnyKey(stringValue: field)], debugDescription: "unknown field"))
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        service = try container.decode(String.self, forKey: .service)
        image = try container.decode(String.self, forKey: .image)
        environment = try container.decode(String.self, forKey: .environment)
        strategy = try container.decodeIfPresent(String.self, forKey: .strategy)
        replicas = try container.decodeIfPresent(Int.self, forKey: .replicas)
        healthURL = try container.decodeIfPresent(String.self, forKey: .healthURL)
        labels = try container.decodeIfPresent([String: String].self, forKey: .labels)
    }

    struct AnyKey: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}

/// A deployment request that passed validation, with typed fields.
public struct DeploymentSpec: Sendable, Equatable, Codable {
    public var service: String
    public var image: ImageReference
    /// The image as the client wrote it; what the manifests use.
    public var imageText: String
    public var environment: DeploymentEnvironment
    public var strategy: DeploymentStrategy
    public var replicas: Int
    public var healthURL: String?
    public var labels: [String: String]

    public static let replicaRange = 1...100
    public static let maximumLabels = 32
    public static let maximumHealthURLLength = 2048
    public static let maximumImageLength = 512

    public init(
        service: String, image: ImageReference, imageText: String, environment: DeploymentEnvironment,
        strategy: DeploymentStrategy, replicas: Int, healthURL: String?, labels: [String: String]
    ) {
        self.service = service
        self.image = image
        self.imageText = imageText
        self.environment = environment
        self.strategy = strategy
        self.replicas = replicas
        self.healthURL = healthURL
        self.labels = labels
    }

    /// Validates every field and reports all problems at once.
    public static func validate(_ request: DeploymentRequest) -> Result<DeploymentSpec, ValidationFailure> {
        var violations: [FieldViolation] = []
        func fail(_ field: String, _ message: String) { violations.append(FieldViolation(field: field, message: message)) }

        if !isDNSLabel(request.service) {
            fail("service", "must be a DNS label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit")
        }
        var image: ImageReference?
        if request.image.unicodeScalars.count > maximumImageLength {
            fail("image", "must be at most \(maximumImageLength) characters")
        } else {
            do {
                image = try ImageReference(parsing: request.image)
            } catch {
                fail("image", "is not a valid OCI image reference: it \(error)")
            }
        }
        let environment = DeploymentEnvironment(rawValue: request.environment)
        if environment == nil {
            fail("environment", "must be one of \(DeploymentEnvironment.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let strategy = request.strategy.map(DeploymentStrategy.init(rawValue:)) ?? .rolling
        if strategy == nil {
            fail("strategy", "must be one of \(DeploymentStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let replicas = request.replicas ?? 1
        if !replicaRange.contains(replicas) {
            fail("replicas", "must be from \(replicaRange.lowerBound) to \(replicaRange.upperBound)")
        }
        if let healthURL = request.healthURL, !isHealthURL(healthURL) {
            fail("health_url", "must be an absolute http or https URL of at most \(maximumHealthURLLength) characters")
        }
        let labels = request.labels ?? [:]
        if labels.count > maximumLabels {
            fail("labels", "must have at most \(maximumLabels) entries")
        }
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            if !LabelRules.isKey(key) {
                fail(
                    "labels.\(key)", "is not a valid label key: an optional DNS prefix and '/', then 1-63 letters, digits, '-', '_' or '.'")
            } else if !LabelRules.isValue(value) {
                fail(
                    "labels.\(key)",
                    "has an invalid value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
            }
        }
        guard violations.isEmpty, let image, let environment, let strategy else {
            return .failure(ValidationFailure(violations: violations))
        }
        return .success(
            DeploymentSpec(
                service: request.service, image: image, imageText: request.image, environment: environment,
                strategy: strategy, replicas: replicas, healthURL: request.healthURL, labels: labels
            )
        )
    }

    /// RFC 1123 label: what Kubernetes accepts as a Service name.
    public static func isDNSLabel(_ text: String) -> Bool {
        guard (1...63).contains(text.count), let first = text.first, let last = text.last,
            first.isLowercaseAlphanumeric, last.isLowercaseAlphanumeric
        else { return false }
        return text.allSatisfy { $0.isLowercaseAlphanumeric || $0 == "-" }
    }

    static func isHealthURL(_ text: String) -> Bool {
        guard text.unicodeScalars.count <= maximumHealthURLLength, let url = URL(string: text),
            let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else { return false }
        return true
    }
}

public struct ValidationFailure: Error, Sendable, Equatable {
    public let violations: [FieldViolation]
}

/// Kubernetes label syntax, which the rendered manifests carry.
public enum LabelRules {
    public static func isKey(_ key: String) -> Bool {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            return isName(parts[0])
        case 2:
            return isDNSSubdomain(parts[0]) && isName(parts[1])
        default:
            return false
        }
    }

    public static func isValue(_ value: String) -> Bool {
        value.isEmpty || isName(Substring(value))
    }

    static func isName(_ name: Substring) -> Bool {
        guard (1...63).contains(name.count), let first = name.first, let last = name.last,
            first.isASCIIAlphanumeric, last.isASCIIAlphanumeric
        else { return false }
        return name.allSatisfy { $0.isASCIIAlphanumeric || $0 == "-" || $0 == "_" || $0 == "." }
    }

    static func isDNSSubdomain(_ text: Substring) -> Bool {
        guard (1...253).contains(text.count) else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { DeploymentSpec.isDNSLabel(String($0)) }
    }
}
