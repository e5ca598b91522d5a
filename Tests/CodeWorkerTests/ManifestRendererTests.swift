import CodeDomain
import Foundation
import Testing
import Yams

@testable import CodeWorker

@Suite("Hardened manifests")
struct ManifestRendererTests {
    static func deployment(
        strategy: DeploymentStrategy = .rolling, environment: DeploymentEnvironment = .production, replicas: Int = 3,
        labels: [String: String] = ["team": "core"]
    ) throws -> Deployment {
        let image = "ghcr.io/acme/web@sha256:" + String(repeating: "ab", count: 32)
        return Deployment(
            id: "dep_1", service: "web", image: image, imageRef: try ImageReference(parsing: image), environment: environment,
            strategy: strategy, replicas: replicas, healthURL: nil, labels: labels, status: .running, attempt: 1, error: nil,
            cancelRequested: false, leaseOwner: "w", leaseExpiresAt: nil, createdBy: nil, createdAt: Date(), updatedAt: Date(),
            startedAt: nil, finishedAt: nil
        )
    }

    @Test func composeServiceIsHardened() throws {
        let rendered = try ManifestRenderer().render(try Self.deployment())
        let compose = try #require(try Yams.load(yaml: rendered.compose) as? [String: Any])
        let service = try #require((compose["services"] as? [String: Any])?["web"] as? [String: Any])
        #expect(service["user"] as? String == "1001:1001")
        #expect(service["read_only"] as? Bool == true)
        #expect(service["cap_drop"] as? [String] == ["ALL"])
        #expect(service["security_opt"] as? [String] == ["no-new-privileges:true"])
        #expect(service["tmpfs"] as? [String] == ["/tmp:noexec,nosuid,size=100m"])
        #expect((service["healthcheck"] as? [String: Any])?["test"] as? [String] == ["CMD", "/app/service", "--health-check"])
        let deploy = try #require(service["deploy"] as? [String: Any])
        #expect(deploy["replicas"] as? Int == 3)
        let resources = try #require(deploy["resources"] as? [String: Any])
        #expect((resources["limits"] as? [String: Any])?["memory"] as? String == "2G")
        #expect((resources["reservations"] as? [String: Any])?["cpus"] as? String == "0.5")
        let logging = try #require(service["logging"] as? [String: Any])
        #expect(logging["driver"] as? String == "json-file")
        #expect((logging["options"] as? [String: String])?["max-size"] == "100m")
    }

    @Test func kubernetesDeploymentIsHardened() throws {
        let rendered = try ManifestRenderer().render(try Self.deployment())
        let documents = try Array(Yams.load_all(yaml: rendered.kubernetes)).compactMap { $0 as? [String: Any] }
        #expect(documents.map { $0["kind"] as? String } == ["Deployment", "Service"])
        let spec = try #require(documents[0]["spec"] as? [String: Any])
        #expect(spec["replicas"] as? Int == 3)
        let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let podSecurity = try #require(pod["securityContext"] as? [String: Any])
        #expect(podSecurity["runAsNonRoot"] as? Bool == true)
        #expect(podSecurity["runAsUser"] as? Int == 1001)
        #expect((podSecurity["seccompProfile"] as? [String: Any])?["type"] as? String == "RuntimeDefault")
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let security = try #require(container["securityContext"] as? [String: Any])
        #expect(security["readOnlyRootFilesystem"] as? Bool == true)
        #expect(security["allowPrivilegeEscalation"] as? Bool == false)
        #expect((security["capabilities"] as? [String: Any])?["drop"] as? [String] == ["ALL"])
        #expect(((container["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/health/live")
        #expect(((container["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/health/ready")
        #expect((container["resources"] as? [String: Any])?["limits"] != nil)
        #expect(container["imagePullPolicy"] as? String == "IfNotPresent", "digest-pinned images need no re-pull")
    }

    @Test(arguments: [
        (DeploymentStrategy.rolling, "RollingUpdate", "25%"),
        (.recreate, "Recreate", "none"),
        (.blueGreen, "RollingUpdate", "100%"),
        (.canary, "RollingUpdate", "1"),
    ])
    func strategyMapsToRolloutSettings(strategy: DeploymentStrategy, type: String, maxSurge: String) throws {
        let rendered = try ManifestRenderer().render(try Self.deployment(strategy: strategy))
        let document = try #require(try Yams.load_all(yaml: rendered.kubernetes).first { _ in true } as? [String: Any])
        let rollout = try #require((document["spec"] as? [String: Any])?["strategy"] as? [String: Any])
        #expect(rollout["type"] as? String == type)
        let rollingUpdate = rollout["rollingUpdate"] as? [String: Any]
        #expect("\(rollingUpdate?["maxSurge"] ?? "none")" == maxSurge)
        if rollingUpdate != nil { #expect(rollingUpdate?["maxUnavailable"] as? Int == 0) }
    }

    @Test func renderingIsDeterministic() throws {
        let deployment = try Self.deployment()
        #expect(try ManifestRenderer().render(deployment) == ManifestRenderer().render(deployment))
    }

    /// Values that a plain scalar would turn into something else: numbers, bools, null, timestamps.
    static let lookalikes = [
        "1", "1.0", "-2", "+3", ".5", ".inf", "0x1F", "0o17", "1_000", "2026-12-03", "yes", "No", "TRUE", "off", "On", "null", "~",
        "", "<<", "=", "a: b", "- x", "#tag", "web", "tcp", "nginx", "Often", "faster",
        // A bool or null word with a line break after it still matches its rule (ICU's `$`).
        "yes\n", "Null\r\n", "off\r", "NO\u{2028}", "true\u{85}", "nullable", "on fire", "n\n", "TRUE ",
    ]

    /// Strings beginning with each letter that can begin a bool or null, every word of Yams' bool and null
    /// rules, and each followed by what ICU's `$` does and does not skip (its line terminators: LF, VT, FF,
    /// CR, CR LF, NEL, LS and PS).
    static var letterFirstStrings: [String] {
        let words = [
            "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
            "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "yES", "nULL", "tRUE", "oN", "Nope",
            "y", "Y", "n", "N", "t", "f", "o", "O", "nginx", "tcp", "OnFailure", "falsey",
        ]
        let endings = ["", "\n", "\r", "\r\n", "\n\n", " ", "\t", "x", "1", ".", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}", "é"]
        return words.flatMap { word in endings.map { word + $0 } }
    }

    /// Strings beginning with what can begin a number, a timestamp, `~`, `<<` or `=`: the values a manifest
    /// holds (sizes, durations, ports, versions), every kind of number and timestamp Yams' rules match, and
    /// each followed by a letter no rule has, by each letter some rule has, and by each line terminator.
    static var numberFirstStrings: [String] {
        let stems = [
            "256M", "0.5", "10s", "100m", "8000", "8000:8000", "1.0.0", "1.27", "3", "0", "-1", "+1", ".5", ".inf", ".Inf", ".INF",
            "-.inf", ".nan", ".NaN", ".NAN", "0b101", "0o17", "017", "0x1F", "0xff", "1_000", "1:30", "1:30.5", "1e3", "1.5E-3", ".5e+3",
            "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15T02:59:43.1Z", "~", "<<", "=",
            "<", "==", "~/data", "1/2", "1,000", "10%", "1 000", "12:00:00", "-", "+", ".", "0.", "1.2.3-rc.1", "3d", "4h",
            "2001-12-14\t21:59:43", "0xcdBCD6",
        ]
        let endings = [
            "", "M", "s", "m", "/", "g", "z", "X", "O", "a", "e", "f", "n", "T", "Z", "x", "o", "b", "\n", "\r\n", "\r", "\u{0B}", "\u{0C}",
            "\u{85}", "\u{2028}", "\u{2029}",
            "é",
        ]
        return stems.flatMap { stem in endings.map { stem + $0 } }
    }

    /// The number shortcut's table holds every ASCII character that the patterns of Yams' `int`, `float`,
    /// `timestamp`, `merge` and `value` rules spell (ranges such as `0-9` and `a-f` expanded, escapes such as
    /// `\.` and `\t` read), and the `~` of `null`: a Yams release that changes those rules fails this.
    @Test func theNumberShortcutKnowsEveryCharacterOfTheRules() {
        let rules = Resolver.default.rules.filter { [.int, .float, .timestamp, .merge, .value].contains($0.tag) }
        #expect(rules.count == 5)
        func isAlphanumeric(_ byte: UInt8) -> Bool { UnicodeScalar(byte).properties.isAlphabetic || (0x30...0x39).contains(byte) }
        var spelled = Set("~".utf8)
        for pattern in rules.map(\.pattern) {
            let bytes = Array(pattern.utf8)
            var index = 0
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count {
                    spelled.insert(bytes[index + 1] == UInt8(ascii: "t") ? 0x09 : bytes[index + 1])
                    index += 2
                } else if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "-"), isAlphanumeric(bytes[index]),
                    isAlphanumeric(bytes[index + 2])
                {
                    spelled.formUnion(bytes[index]...bytes[index + 2])
                    index += 3
                } else {
                    spelled.insert(bytes[index])
                    index += 1
                }
            }
        }
        // The regular expressions' own syntax; none of them matches these characters.
        let syntax = Set("^$()?|[]*".utf8)
        for byte in spelled.subtracting(syntax).sorted() {
            #expect(ManifestYAMLEncoder.numberRuleBytes[Int(byte)], "\(UnicodeScalar(byte).escaped(asASCII: true))")
        }
        #expect(spelled.contains(UInt8(ascii: "Z")) && spelled.contains(0x09) && spelled.contains(UInt8(ascii: "5")))
    }

    @Test func theShortcutsAgreeWithYamsResolver() {
        // ManifestYAMLEncoder decides a letter-first string, and a number-first one with a byte no number
        // rule has, without the resolver's regular expressions; the resolver is the reference for every
        // such string, except the single letters y, Y, n and N,
        // which it quotes on purpose (see labelsThatLookLikeOtherTypesReadBackAsStrings).
        for string in Self.letterFirstStrings + Self.numberFirstStrings + Self.lookalikes {
            let expected = ["y", "Y", "n", "N"].contains(string) ? false : ManifestYAMLEncoder.resolvesToString(string)
            #expect(ManifestYAMLEncoder.readsBackAsString(string) == expected, "\(string.debugDescription)")
        }
    }

    @Test(arguments: DeploymentStrategy.allCases)
    func writesWhatYamsEncoderWrites(strategy: DeploymentStrategy) throws {
        // Yams' YAMLEncoder with sorted keys is the reference; ManifestYAMLEncoder only writes it cheaper.
        // (Keys that look like other types are left out: those ManifestYAMLEncoder quotes and Yams does not.)
        let reference = YAMLEncoder()
        reference.options.sortKeys = true
        var labels = ["team": "core"]
        for (index, value) in Self.lookalikes.enumerated() { labels["label-\(index)"] = value }
        for environment in DeploymentEnvironment.allCases {
            let deployment = try Self.deployment(strategy: strategy, environment: environment, labels: labels)
            let renderer = ManifestRenderer()
            let encoder = ManifestYAMLEncoder()
            #expect(try encoder.encode(renderer.composeFile(deployment)) == reference.encode(renderer.composeFile(deployment)))
            #expect(
                try encoder.encode(renderer.kubernetesDeployment(deployment)) == reference.encode(renderer.kubernetesDeployment(deployment))
            )
            #expect(try encoder.encode(renderer.kubernetesService(deployment)) == reference.encode(renderer.kubernetesService(deployment)))
        }
    }

    @Test func labelsThatLookLikeOtherTypesReadBackAsStrings() throws {
        var labels: [String: String] = [:]
        for value in Self.lookalikes where !value.isEmpty { labels[value] = value }
        let rendered = try ManifestRenderer().render(try Self.deployment(labels: labels))
        let compose = try #require(try Yams.load(yaml: rendered.compose) as? [String: Any])
        let service = try #require((compose["services"] as? [String: Any])?["web"] as? [String: Any])
        let written = try #require(service["labels"] as? [String: String], "every key and value reads back as a string")
        #expect(written.filter { labels[$0.key] != nil } == labels)
        #expect(rendered.compose.contains("'1.0': '1.0'"), "a number-like label is quoted")
        #expect(rendered.compose.contains("web: web"), "a plain word stays plain")
        let yes = try ManifestRenderer().render(try Self.deployment(labels: ["answer": "y", "N": "n"]))
        #expect(yes.compose.contains("answer: 'y'"), "y is a bool to YAML 1.1 readers such as kubectl's")
        #expect(yes.compose.contains("'N': 'n'"))
    }
}
