import CodeAPIContract
import CodeDomain
import CodeTestSupport
import Foundation
import HummingbirdTesting
import OpenAPIRuntime
import Testing

/// `ContractJSONEncoder` against what it replaces: Foundation's `JSONEncoder` configured as the OpenAPI
/// runtime configures it for `Configuration.contract` (compact, slashes unescaped, dates through the
/// contract's transcoder).
@Suite("Contract JSON encoder")
struct ContractJSONEncoderTests {
    static let foundationEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let transcoder = ContractDateTranscoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try transcoder.encode(date))
        }
        return encoder
    }()

    /// The contract's decoder (dates through the same transcoder's parser).
    static let decoder = CodeJSON.decoder

    /// The JSON both encoders wrote, read back and written again with sorted keys: equal when both wrote
    /// the same members and values, whatever the order of the keys.
    static func canonical(_ bytes: some Collection<UInt8>) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func deployment(_ n: Int, everything: Bool) -> Components.Schemas.Deployment {
        let at = Date(timeIntervalSince1970: 1_796_000_000.5 + Double(n))
        return .init(
            id: "dep_\(n)", service: "web", image: "ghcr.io/acme/web:1.4.\(n)",
            imageRef: .init(
                registry: "ghcr.io", repository: "acme/web", tag: "1.4.\(n)",
                digest: everything ? "sha256:" + String(repeating: "ab", count: 32) : nil),
            environment: .production, strategy: .canary, replicas: 3,
            healthUrl: everything ? "http://web.internal:8080/health" : nil,
            labels: .init(additionalProperties: everything ? ["team": "payments", "tier": "front/end"] : [:]),
            status: everything ? .failed : .queued, attempt: n,
            error: everything ? "probe said \"no\"\n\tat line 1 \\ tab\u{1}\u{1f} é 🚀 \u{2028}" : nil,
            cancelRequested: everything, leaseOwner: everything ? "worker-1" : nil, leaseExpiresAt: everything ? at : nil,
            createdBy: everything ? "key_1" : nil, createdAt: at, updatedAt: at.addingTimeInterval(0.5),
            startedAt: everything ? at : nil, finishedAt: everything ? at.addingTimeInterval(2) : nil)
    }

    static let at = Date(timeIntervalSince1970: 1_796_000_000.5)

    static let key = Components.Schemas.Key(
        id: "key_1", name: "ci \"deployer\"", role: ._operator, prefix: "code_ab12", createdAt: at, createdBy: "key_0",
        lastUsedAt: at.addingTimeInterval(60))

    /// A value of every schema marked `ContractResponseBody`, with its optionals set and left out.
    static let samples: [any ContractResponseBody & Decodable & Sendable] = [
        deployment(1, everything: true),
        deployment(2, everything: false),
        Components.Schemas.DeploymentPage(items: [deployment(3, everything: true), deployment(4, everything: false)], nextCursor: "k2x9"),
        Components.Schemas.DeploymentPage(items: []),
        Components.Schemas.ValidationResult(
            valid: true, imageRef: .init(registry: "docker.io", repository: "library/nginx", tag: "1.27"), strategy: .blueGreen,
            replicas: 2),
        Components.Schemas.EventPage(
            items: [
                .init(
                    seq: 9_007_199_254_740_993, deploymentId: "dep_1", at: at, attempt: 1, workerId: "w-1", step: "render", kind: .finished,
                    outcome: .succeeded, durationMs: 12, message: "rendered 2 manifests"),
                .init(seq: 2, deploymentId: "dep_1", at: at, attempt: 1, step: "claim", kind: .info, message: ""),
            ], nextAfter: 9_007_199_254_740_993),
        Components.Schemas.Manifests(
            deploymentId: "dep_1", attempt: 2, renderedAt: at,
            compose: "services:\n  web:\n    image: \"ghcr.io/acme/web:1.4.2\"\n    read_only: true\n",
            kubernetes: "apiVersion: apps/v1\nkind: Deployment\n---\napiVersion: v1\nkind: Service\n"),
        key,
        Components.Schemas.CreatedKey(value1: key, value2: .init(secret: "code_" + String(repeating: "f", count: 40))),
        Components.Schemas.KeyPage(items: [
            key, .init(id: "key_2", name: "viewer", role: .viewer, prefix: "code_cd34", createdAt: at, revokedAt: at),
        ]),
        Components.Schemas.AuditPage(
            items: [
                .init(
                    seq: 1, at: at, keyId: "key_1", action: "deployment.create", target: "dep_1", outcome: .succeeded, status: 201,
                    requestId: "req-1", method: "POST", path: "/v1/deployments", client: "127.0.0.1"),
                .init(seq: 2, at: at, action: "auth", outcome: .unauthenticated, status: 401, method: "GET", path: "/v1/audit"),
            ], nextCursor: "2"),
        Components.Schemas.Policy(
            rules: [.init(id: "registry", title: "Allowed registries", description: "Images come from \\ these / registries.")],
            allowedRegistries: ["ghcr.io", "registry.example.com:5000"]),
        Components.Schemas.Policy(rules: []),
        Components.Schemas.Problem(
            _type: "https://code.example/problems/validation_failed", title: "Unprocessable Content", status: 422,
            detail: "2 fields are invalid.", code: "validation_failed", requestId: "req-2",
            errors: [.init(field: "service", message: "must be a DNS label"), .init(field: "labels.a/b", message: "is too long")],
            violations: [.init(rule: "no-latest", message: "tag `latest` is not allowed")]),
    ]

    @Test(arguments: samples.indices)
    func writesWhatFoundationsEncoderWritesForEveryResponseSchema(sample: Int) throws {
        try Self.check(Self.samples[sample])
    }

    static func check<T: ContractResponseBody & Decodable>(_ value: T) throws {
        let ours = try ContractJSONEncoder().encode(value)
        #expect(try canonical(ours) == canonical(foundationEncoder.encode(value)), "\(T.self)")
        // Read back by the contract's decoder as the same value, and compact: no space or newline between tokens.
        let decoded = try decoder.decode(T.self, from: Data(ours))
        #expect(try canonical(foundationEncoder.encode(decoded)) == canonical(ours))
        #expect(!ours.contains(UInt8(ascii: "\n")))
    }

    @Test
    func keysComeInTheOrderTheyAreEncodedAndSlashesAsTheyAre() throws {
        let json = String(decoding: try ContractJSONEncoder().encode(Self.deployment(2, everything: false)), as: UTF8.self)
        #expect(
            json
                == #"{"id":"dep_2","service":"web","image":"ghcr.io/acme/web:1.4.2","image_ref":{"registry":"ghcr.io","repository":"acme/web","tag":"1.4.2"},"environment":"production","strategy":"canary","replicas":3,"labels":{},"status":"queued","attempt":2,"cancel_requested":false,"created_at":"2026-11-30T00:53:22.500Z","updated_at":"2026-11-30T00:53:23.000Z"}"#
        )
    }

    @Test
    func everyASCIICharacterAndBeyondReadsBackAsWritten() throws {
        let text = String(decoding: (0...0x7F).map { UInt8($0) }, as: UTF8.self) + "é 🚀 \u{2028}\u{FEFF}"
        let ours = try ContractJSONEncoder().encode(["text": text])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(ours)) as? [String: String])
        #expect(object["text"] == text)
        #expect(String(decoding: ours, as: UTF8.self).contains(#"\u001f"#))
        #expect(String(decoding: ours, as: UTF8.self).contains(#"\"\\/"#) == false)
    }

    /// How `Encodable` types use an encoder beyond the generated ones: a second container on the same
    /// encoder, nested containers, a value that encodes nothing, numbers at their limits.
    struct Shapes: Encodable {
        func encode(to encoder: any Encoder) throws {
            var first = encoder.container(keyedBy: AnyKey.self)
            try first.encode([[1, 2], [], [3]], forKey: "matrix")
            var nested = first.nestedContainer(keyedBy: AnyKey.self, forKey: "nested")
            try nested.encode(Nothing(), forKey: "nothing")
            var list = nested.nestedUnkeyedContainer(forKey: "list")
            try list.encode(true)
            try list.encodeNil()
            var inner = list.nestedContainer(keyedBy: AnyKey.self)
            try inner.encode(Int64.min, forKey: "min")
            try inner.encode(UInt64.max, forKey: "max")
            try list.encode(2.0)
            try list.encode(0.1)
            try list.encode(Float(-1.5))
            try Nothing().encode(to: list.superEncoder())
            try "super".encode(to: list.superEncoder())
            try Nothing().encode(to: first.superEncoder(forKey: "super_nothing"))
            // A second container of the same encoder adds to the same object, after what the first one opened.
            var second = encoder.container(keyedBy: AnyKey.self)
            try second.encode("after", forKey: "second")
            try second.encodeNil(forKey: "null")
            try second.encode(Data([0, 1, 2, 250]), forKey: "data")
            try second.encode(URL(string: "https://example.com/a?b=c")!, forKey: "url")
            try second.encode(Decimal(string: "12.50")!, forKey: "decimal")
            try second.encode(Self.at, forKey: "date")
        }
        static let at = ContractJSONEncoderTests.at
    }

    struct Nothing: Encodable {
        func encode(to encoder: any Encoder) throws {}
    }

    struct AnyKey: CodingKey, ExpressibleByStringLiteral {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init(stringLiteral value: String) { self.stringValue = value }
        init?(intValue: Int) { nil }
    }

    @Test
    func containersNestAndCloseAsTheValueUsesThem() throws {
        let ours = try ContractJSONEncoder().encode(Shapes())
        #expect(try Self.canonical(ours) == Self.canonical(Self.foundationEncoder.encode(Shapes())))
        #expect(
            String(decoding: ours, as: UTF8.self)
                == #"{"matrix":[[1,2],[],[3]],"nested":{"nothing":{},"list":[true,null,{"min":-9223372036854775808,"max":18446744073709551615},2,0.1,-1.5,{},"super"]},"#
                + #""super_nothing":{},"second":"after","null":null,"data":"AAEC+g==","url":"https://example.com/a?b=c","decimal":12.5,"date":"2026-11-30T00:53:20.500Z"}"#
        )
    }

    /// Writes a streaming encoder cannot place (`JSONEncoder`, holding a tree, takes some of them; it stops the
    /// process on others): refused with an error, never a crash or JSON that does not parse. (Not `Encodable`
    /// itself: Swift Testing encodes the arguments of a test with `JSONEncoder`, which stops on `Twice`.)
    enum OutOfOrder: CaseIterable {
        case intoAClosedObject, intoAClosedArray, oneValueTwice, anEncoderKeptPastItsValue, anObjectThenAnArray
        case twoArraysFilledInTurn, aSuperEncoderUsedAfterASibling
    }

    struct Writes: Encodable {
        let misuse: OutOfOrder

        func encode(to encoder: any Encoder) throws {
            var object = encoder.container(keyedBy: AnyKey.self)
            switch misuse {
            case .intoAClosedObject:
                var nested = object.nestedContainer(keyedBy: AnyKey.self, forKey: "nested")
                try object.encode(1, forKey: "sibling")
                try nested.encode(2, forKey: "late")
            case .intoAClosedArray:
                var list = object.nestedUnkeyedContainer(forKey: "list")
                try object.encode(1, forKey: "sibling")
                try list.encode("late")
            case .oneValueTwice:
                try object.encode(Twice(), forKey: "twice")
            case .anEncoderKeptPastItsValue:
                let kept = Kept()
                try object.encode(kept, forKey: "kept")
                try object.encode(1, forKey: "sibling")
                var late = try #require(kept.encoder).singleValueContainer()
                try late.encode("late")
            case .anObjectThenAnArray:
                var list = encoder.unkeyedContainer()
                try list.encode(1)
            case .twoArraysFilledInTurn:
                // JSONEncoder writes {"a":[0,1],"b":[0,10]}; written as it goes, a's second element would land in b.
                var a = object.nestedUnkeyedContainer(forKey: "a")
                var b = object.nestedUnkeyedContainer(forKey: "b")
                for index in 0..<2 {
                    try a.encode(index)
                    try b.encode(index * 10)
                }
            case .aSuperEncoderUsedAfterASibling:
                let parent = object.superEncoder()
                try object.encode(1, forKey: "sibling")
                try 5.encode(to: parent)
            }
        }
    }

    struct Twice: Encodable {
        func encode(to encoder: any Encoder) throws {
            var value = encoder.singleValueContainer()
            try value.encode(1)
            try value.encode(2)
        }
    }

    final class Kept: Encodable, @unchecked Sendable {
        var encoder: (any Encoder)?
        func encode(to encoder: any Encoder) throws {
            self.encoder = encoder
            var value = encoder.singleValueContainer()
            try value.encode(true)
        }
    }

    @Test(arguments: OutOfOrder.allCases)
    func writesOutOfOrderAreRefused(_ misuse: OutOfOrder) throws {
        #expect(throws: EncodingError.self) { try ContractJSONEncoder().encode(Writes(misuse: misuse)) }
    }

    @Test
    func whatJSONCannotHoldIsRefused() throws {
        #expect(throws: EncodingError.self) { try ContractJSONEncoder().encode(["x": Double.nan]) }
        #expect(throws: EncodingError.self) { try ContractJSONEncoder().encode([Double.infinity]) }
        #expect(throws: EncodingError.self) { try ContractJSONEncoder().encode(Nothing()) }
        #expect(String(decoding: try ContractJSONEncoder().encode([Nothing()]), as: UTF8.self) == "[{}]")
        #expect(String(decoding: try ContractJSONEncoder().encode("top \"level\""), as: UTF8.self) == #""top \"level\"""#)
    }

    /// Through code-api: every JSON body of the contract that these requests reach comes from
    /// `ContractJSONEncoder`, byte for byte (Foundation's encoder writes an object's keys in the order of a
    /// hash, so its bytes would differ), and means what Foundation's would.
    @Test(arguments: TestBackend.available)
    func codeAPIWritesItsResponsesWithIt(backend: TestBackend) async throws {
        try await withAPI(backend) { api in
            let created = try await api.client.call(.post, "/v1/deployments", key: api.keys.operator, json: Requests.deployment())
            let id = try Self.expectWrittenByContractEncoder(created, Components.Schemas.Deployment.self).id
            try Self.expectWrittenByContractEncoder(
                try await api.client.call(.get, "/v1/deployments/\(id)", key: api.keys.viewer), Components.Schemas.Deployment.self)
            try Self.expectWrittenByContractEncoder(
                try await api.client.call(.get, "/v1/deployments?limit=5", key: api.keys.viewer), Components.Schemas.DeploymentPage.self)
            try Self.expectWrittenByContractEncoder(
                try await api.client.call(.post, "/v1/deployments/validate", key: api.keys.viewer, json: Requests.deployment()),
                Components.Schemas.ValidationResult.self)
            try Self.expectWrittenByContractEncoder(
                try await api.client.call(.get, "/v1/deployments/\(id)/events", key: api.keys.viewer), Components.Schemas.EventPage.self)
            try Self.expectWrittenByContractEncoder(
                try await api.client.call(.post, "/v1/deployments/\(id)/cancel", key: api.keys.operator), Components.Schemas.Deployment.self
            )
            let key = try Self.expectWrittenByContractEncoder(
                try await api.client.call(.post, "/v1/keys", key: api.keys.admin, json: ["name": "encoder", "role": "viewer"]),
                Components.Schemas.CreatedKey.self)
            try Self.expectWrittenByContractEncoder(
                try await api.client.call(.get, "/v1/keys", key: api.keys.admin), Components.Schemas.KeyPage.self)
            try Self.expectWrittenByContractEncoder(
                try await api.client.call(.delete, "/v1/keys/\(key.value1.id)", key: api.keys.admin), Components.Schemas.Key.self)
            try Self.expectWrittenByContractEncoder(
                try await api.client.call(.get, "/v1/audit?limit=50", key: api.keys.admin), Components.Schemas.AuditPage.self)
            try Self.expectWrittenByContractEncoder(
                try await api.client.call(.get, "/v1/policy", key: api.keys.viewer), Components.Schemas.Policy.self)
        }
    }

    @discardableResult
    static func expectWrittenByContractEncoder<T: ContractResponseBody & Decodable>(_ response: TestResponse, _ type: T.Type) throws -> T {
        #expect((200..<300).contains(response.status.code), "\(T.self): \(response.status) \(String(buffer: response.body))")
        #expect(response.headers[.contentType] == "application/json; charset=utf-8")
        #expect(response.headers[.contentLength] == String(response.body.readableBytes))
        let value = try response.decode(T.self)
        let body = Array(response.body.readableBytesView)
        let ours = try ContractJSONEncoder().encode(value)
        #expect(body == ours, "\(T.self): \(String(buffer: response.body)) against \(String(decoding: ours, as: UTF8.self))")
        #expect(try canonical(body) == canonical(foundationEncoder.encode(value)))
        return value
    }
}
