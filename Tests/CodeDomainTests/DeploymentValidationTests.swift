import CodeDomain
import Foundation
import Testing

@Suite("Deployment validation and policy")
struct DeploymentValidationTests {
    static let digest = "sha256:" + String(repeating: "0f", count: 32)

    func violations(_ request: DeploymentRequest) -> [FieldViolation] {
        switch DeploymentSpec.validate(request) {
        case .success: []
        case .failure(let failure): failure.violations
        }
    }

    @Test func validRequestGetsDefaults() throws {
        let spec = try DeploymentSpec.validate(DeploymentRequest(service: "web", image: "ghcr.io/acme/web:1.0", environment: "staging"))
            .get()
        #expect(spec.strategy == .rolling)
        #expect(spec.replicas == 1)
        #expect(spec.labels.isEmpty)
        #expect(spec.image.registry == "ghcr.io")
    }

    @Test func everyInvalidFieldIsReportedAtOnce() {
        let request = DeploymentRequest(
            service: "Web_App", image: "UPPER/case", environment: "prod", strategy: "big-bang", replicas: 101,
            healthURL: "ftp://x", labels: ["bad key!": "v", "ok": String(repeating: "v", count: 64)]
        )
        #expect(
            violations(request).map(\.field) == [
                "service", "image", "environment", "strategy", "replicas", "health_url", "labels.bad key!", "labels.ok",
            ])
    }

    @Test(arguments: ["a", "web", "web-2", String(repeating: "a", count: 63)])
    func acceptsDNSLabels(service: String) {
        #expect(DeploymentSpec.isDNSLabel(service))
    }

    @Test(arguments: ["", "-web", "web-", "Web", "web.app", "web_app", String(repeating: "a", count: 64)])
    func rejectsNonDNSLabels(service: String) {
        #expect(!DeploymentSpec.isDNSLabel(service))
    }

    @Test func replicaBoundsAreInclusive() {
        #expect(violations(DeploymentRequest(service: "web", image: "nginx", environment: "development", replicas: 1)).isEmpty)
        #expect(violations(DeploymentRequest(service: "web", image: "nginx", environment: "development", replicas: 100)).isEmpty)
        #expect(
            violations(DeploymentRequest(service: "web", image: "nginx", environment: "development", replicas: 0)).map(\.field) == [
                "replicas"
            ])
    }

    @Test func labelsAreBounded() {
        let labels = Dictionary(uniqueKeysWithValues: (0...32).map { ("k\($0)", "v") })
        #expect(
            violations(DeploymentRequest(service: "web", image: "nginx", environment: "development", labels: labels)).map(\.field) == [
                "labels"
            ])
        #expect(LabelRules.isKey("app.kubernetes.io/name"))
        #expect(!LabelRules.isKey("a/b/c"))
        #expect(LabelRules.isValue(""))
    }

    @Test func unknownFieldsAreRejected() {
        let body = Data(#"{"service":"web","image":"nginx","environment":"development","replica":3}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(DeploymentRequest.self, from: body) }
    }

    @Test func productionRequiresDigest() throws {
        let policy = DeploymentPolicy()
        let tagged = try ImageReference(parsing: "ghcr.io/acme/web:1.0")
        #expect(policy.evaluate(image: tagged, environment: .production).map(\.rule) == ["production-requires-digest"])
        let pinned = try ImageReference(parsing: "ghcr.io/acme/web@\(Self.digest)")
        #expect(policy.evaluate(image: pinned, environment: .production).isEmpty)
    }

    @Test func latestOrMissingTagIsRefusedOutsideDevelopment() throws {
        let policy = DeploymentPolicy()
        for text in ["ghcr.io/acme/web", "ghcr.io/acme/web:latest"] {
            let image = try ImageReference(parsing: text)
            #expect(policy.evaluate(image: image, environment: .development).isEmpty)
            #expect(policy.evaluate(image: image, environment: .staging).map(\.rule) == ["no-latest-outside-development"])
            #expect(
                policy.evaluate(image: image, environment: .production).map(\.rule) == [
                    "production-requires-digest", "no-latest-outside-development",
                ])
        }
        #expect(
            policy.evaluate(image: try ImageReference(parsing: "ghcr.io/acme/web:latest@\(Self.digest)"), environment: .staging).isEmpty)
    }

    @Test func registryAllowlistAppliesWhenSet() throws {
        let policy = DeploymentPolicy(allowedRegistries: ["ghcr.io", "Registry.Example.com:5000"])
        #expect(policy.evaluate(image: try ImageReference(parsing: "ghcr.io/a/b:1"), environment: .development).isEmpty)
        #expect(policy.evaluate(image: try ImageReference(parsing: "registry.example.com:5000/a:1"), environment: .development).isEmpty)
        #expect(
            policy.evaluate(image: try ImageReference(parsing: "nginx:1"), environment: .development).map(\.rule) == ["registry-allowlist"])
        #expect(DeploymentPolicy(allowedRegistries: []).allowedRegistries == nil, "an empty list allows everything")
    }

    @Test func ruleIDsAreStable() {
        #expect(DeploymentPolicy.rules.map(\.id) == ["production-requires-digest", "no-latest-outside-development", "registry-allowlist"])
    }
}
