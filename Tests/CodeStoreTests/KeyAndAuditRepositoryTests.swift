import CodeDomain
import CodeStore
import CodeTestSupport
import Foundation
import Testing

@Suite("API key and audit repositories")
struct KeyAndAuditRepositoryTests {
    static func newKey(_ secret: String, name: String = "ci", role: Role = .operator) -> NewAPIKey {
        NewAPIKey(name: name, role: role, prefix: APIKeySecret.prefix(of: secret), secretHash: APIKeySecret.hash(secret), createdBy: nil)
    }

    @Test func secretsHaveTheDocumentedShape() {
        let secret = APIKeySecret.generate()
        #expect(secret.hasPrefix("code_"))
        #expect(secret.count == 5 + 43)
        #expect(APIKeySecret.isWellFormed(secret))
        #expect(!APIKeySecret.isWellFormed("code_short"))
        #expect(!APIKeySecret.isWellFormed("token " + secret))
        #expect(APIKeySecret.generate() != secret)
        #expect(APIKeySecret.hash(secret).count == 64)
        // The stored form is lowercase hex SHA-256 (FIPS 180-2's test vector), as keys made by earlier
        // versions were hashed: a changed encoding would lock every existing key out.
        #expect(APIKeySecret.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(APIKeySecret.constantTimeEquals(APIKeySecret.hash(secret), APIKeySecret.hash(secret)))
        #expect(!APIKeySecret.constantTimeEquals(APIKeySecret.hash(secret), APIKeySecret.hash(secret + "x")))
        let hash = APIKeySecret.hash(secret)
        // Equal but one byte, at every position; a prefix; one byte longer; the same bytes in other storage.
        let bytes = Array(hash.utf8)
        for position in bytes.indices {
            var changed = bytes
            changed[position] = changed[position] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
            #expect(!APIKeySecret.constantTimeEquals(hash, String(decoding: changed, as: UTF8.self)), "\(position)")
        }
        #expect(!APIKeySecret.constantTimeEquals(hash, String(hash.dropLast())))
        #expect(!APIKeySecret.constantTimeEquals(hash, hash + "0"))
        #expect(APIKeySecret.constantTimeEquals(hash, String(decoding: bytes, as: UTF8.self)))
        #expect(APIKeySecret.constantTimeEquals("", ""))
        // The well-formed shape is counted in bytes: 43 to 512 after `code_`, of URL-safe base64 only.
        #expect(APIKeySecret.isWellFormed("code_" + String(repeating: "A", count: 512)))
        #expect(!APIKeySecret.isWellFormed("code_" + String(repeating: "A", count: 513)))
        #expect(!APIKeySecret.isWellFormed("code_" + String(repeating: "A", count: 42)))
        #expect(!APIKeySecret.isWellFormed("code_" + String(repeating: "A", count: 42) + "é"))
    }

    @Test(arguments: TestBackend.available)
    func keysAreFoundByHashListedAndRevoked(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let secret = APIKeySecret.generate()
            let key = try await store.createKey(Self.newKey(secret))
            #expect(key.role == .operator)
            #expect(key.prefix == String(secret.prefix(12)))
            let found = try #require(try await store.key(secretHash: APIKeySecret.hash(secret)))
            #expect(found.key == key)
            #expect(found.secretHash == APIKeySecret.hash(secret))
            #expect(try await store.key(secretHash: APIKeySecret.hash("code_other")) == nil)

            let used = Date(timeIntervalSince1970: 1_800_000_000.123)
            try await store.recordKeyUse(id: key.id, at: used)
            #expect(try await store.key(secretHash: APIKeySecret.hash(secret))?.key.lastUsedAt == used)

            let revoked = try #require(try await store.revokeKey(id: key.id, at: Date()))
            #expect(revoked.revokedAt != nil)
            #expect(
                try await store.revokeKey(id: key.id, at: Date().addingTimeInterval(60)) == revoked, "revoking twice keeps the first time")
            #expect(try await store.revokeKey(id: "key_missing", at: Date()) == nil)
        }
    }

    @Test(arguments: TestBackend.available)
    func ensureKeyCreatesOnceAndNeverResurrects(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let secret = APIKeySecret.generate()
            let first = try await store.ensureKey(Self.newKey(secret, name: "bootstrap-admin", role: .admin))
            let second = try await store.ensureKey(Self.newKey(secret, name: "bootstrap-admin", role: .admin))
            #expect(first == second)
            _ = try await store.revokeKey(id: first.id, at: Date())
            let third = try await store.ensureKey(Self.newKey(secret, name: "bootstrap-admin", role: .admin))
            #expect(third.id == first.id)
            #expect(third.revokedAt != nil)
        }
    }

    @Test(arguments: TestBackend.available)
    func keyListIsPaginatedNewestFirst(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            var ids: [String] = []
            for index in 0..<5 {
                ids.append(try await store.createKey(Self.newKey(APIKeySecret.generate(), name: "k\(index)")).id)
            }
            let first = try await store.keys(limit: 3, before: nil)
            #expect(first.items.map(\.id) == Array(ids.reversed().prefix(3)))
            let second = try await store.keys(limit: 3, before: first.next)
            #expect(second.items.map(\.id) == [ids[1], ids[0]])
            #expect(second.next == nil)
        }
    }

    @Test(arguments: TestBackend.available)
    func auditEntriesAreKeptNewestFirst(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            for index in 0..<3 {
                try await store.recordAudit(
                    NewAuditEntry(
                        at: Date(), keyID: index == 0 ? nil : "key_\(index)", action: "deployment.create", target: "dep_\(index)",
                        outcome: index == 0 ? "unauthenticated" : "succeeded", status: index == 0 ? 401 : 201, requestID: "r\(index)",
                        method: "POST", path: "/v1/deployments"
                    ))
            }
            let page = try await store.auditEntries(limit: 2, before: nil)
            #expect(page.items.map(\.target) == ["dep_2", "dep_1"])
            #expect(page.items.first?.keyID == "key_2")
            let rest = try await store.auditEntries(limit: 2, before: page.next)
            #expect(rest.items.map(\.outcome) == ["unauthenticated"])
            #expect(rest.items.first?.keyID == nil)
            #expect(rest.next == nil)
        }
    }
}
