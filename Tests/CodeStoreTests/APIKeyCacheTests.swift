import CodeDomain
import CodeStore
import CodeTestSupport
import Foundation
import Synchronization
import Testing

/// The real store, counting its key lookups and, when asked, doing something in the middle of one (after
/// the store answered, before the cache sees the answer).
private final class ObservedKeys: APIKeyRepository {
    let store: any Store
    let lookups = Mutex(0)
    let duringLookup = Mutex<(@Sendable () async throws -> Void)?>(nil)

    init(_ store: any Store) { self.store = store }

    func key(secretHash: String) async throws -> StoredAPIKey? {
        lookups.withLock { $0 += 1 }
        let found = try await store.key(secretHash: secretHash)
        if let action = duringLookup.withLock({ $0 }) { try await action() }
        return found
    }

    func createKey(_ key: NewAPIKey) async throws -> APIKey { try await store.createKey(key) }
    func ensureKey(_ key: NewAPIKey) async throws -> APIKey { try await store.ensureKey(key) }
    func keys(limit: Int, before: Int64?) async throws -> StorePage<APIKey> { try await store.keys(limit: limit, before: before) }
    func revokeKey(id: String, at now: Date) async throws -> APIKey? { try await store.revokeKey(id: id, at: now) }
    func recordKeyUse(id: String, at now: Date) async throws { try await store.recordKeyUse(id: id, at: now) }
}

@Suite("API key cache")
struct APIKeyCacheTests {
    /// For the checks that are not about expiry: longer than any test takes, however loaded the machine.
    static let longLifetime: Duration = .seconds(600)

    private static func withKey(
        _ backend: TestBackend, _ body: @escaping @Sendable (ObservedKeys, APIKey, String) async throws -> Void
    ) async throws {
        try await withStore(backend) { store in
            let secret = APIKeySecret.generate()
            let key = try await store.createKey(KeyAndAuditRepositoryTests.newKey(secret))
            try await body(ObservedKeys(store), key, APIKeySecret.hash(secret))
        }
    }

    @Test(arguments: TestBackend.available)
    func aFoundKeyIsLookedUpOncePerLifetime(backend: TestBackend) async throws {
        try await Self.withKey(backend) { keys, key, hash in
            let cache = APIKeyCache(lifetime: Self.longLifetime)
            for _ in 0..<20 {
                let found = try await cache.key(secretHash: hash, in: keys)
                #expect(found?.key.id == key.id)
            }
            #expect(keys.lookups.withLock { $0 } == 1)
        }
    }

    @Test(arguments: TestBackend.available)
    func aKeyRevokedElsewhereIsRefusedOnceTheLifetimeIsOver(backend: TestBackend) async throws {
        try await Self.withKey(backend) { keys, key, hash in
            let cache = APIKeyCache(lifetime: .milliseconds(300))
            #expect(try await cache.key(secretHash: hash, in: keys)?.key.revokedAt == nil)
            // Another replica revokes it: this cache does not hear of it.
            _ = try #require(try await keys.store.revokeKey(id: key.id, at: Date()))
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await cache.key(secretHash: hash, in: keys)?.key.revokedAt != nil)
        }
    }

    @Test(arguments: TestBackend.available)
    func anEntryLastsFromBeforeItsLookupNotFromItsAnswer(backend: TestBackend) async throws {
        try await Self.withKey(backend) { keys, key, hash in
            let cache = APIKeyCache(lifetime: .milliseconds(300))
            // A slow lookup: 200 ms between reading the key and answering.
            keys.duringLookup.withLock { $0 = { try await Task.sleep(for: .milliseconds(200)) } }
            let slow = try await cache.key(secretHash: hash, in: keys)
            #expect(slow?.key.revokedAt == nil)
            keys.duringLookup.withLock { $0 = nil }
            _ = try #require(try await keys.store.revokeKey(id: key.id, at: Date()))
            // 350 ms after the lookup began, 150 ms after it answered: counted from the answer, the entry
            // would still vouch for the key for another 150 ms.
            try await Task.sleep(for: .milliseconds(150))
            let later = try await cache.key(secretHash: hash, in: keys)
            #expect(later?.key.revokedAt != nil)
        }
    }

    @Test(arguments: TestBackend.available)
    func aKeyRevokedThroughThisProcessIsRefusedAtOnce(backend: TestBackend) async throws {
        try await Self.withKey(backend) { keys, key, hash in
            let cache = APIKeyCache(lifetime: Self.longLifetime)
            #expect(try await cache.key(secretHash: hash, in: keys)?.key.revokedAt == nil)
            _ = try await keys.revokeKey(id: key.id, at: Date())
            cache.forget(keyID: key.id)
            #expect(try await cache.key(secretHash: hash, in: keys)?.key.revokedAt != nil)
        }
    }

    @Test(arguments: TestBackend.available)
    func aLookupUnderWayWhenThisProcessRevokesKeepsNothing(backend: TestBackend) async throws {
        try await Self.withKey(backend) { keys, key, hash in
            let cache = APIKeyCache(lifetime: Self.longLifetime)
            // The lookup reads the key before the revocation and is answered after it.
            keys.duringLookup.withLock {
                $0 = {
                    _ = try await keys.revokeKey(id: key.id, at: Date())
                    cache.forget(keyID: key.id)
                }
            }
            let duringRevocation = try await cache.key(secretHash: hash, in: keys)
            #expect(duringRevocation?.key.revokedAt == nil)
            keys.duringLookup.withLock { $0 = nil }
            #expect(cache.count == 0)
            let afterRevocation = try await cache.key(secretHash: hash, in: keys)
            #expect(afterRevocation?.key.revokedAt != nil)
        }
    }

    @Test(arguments: TestBackend.available)
    func unknownKeysAreNotKept(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let keys = ObservedKeys(store)
            let cache = APIKeyCache(lifetime: Self.longLifetime)
            let secret = APIKeySecret.generate()
            #expect(try await cache.key(secretHash: APIKeySecret.hash(secret), in: keys) == nil)
            #expect(cache.count == 0)
            // Created a moment after it was refused: found at once.
            let key = try await store.createKey(KeyAndAuditRepositoryTests.newKey(secret))
            #expect(try await cache.key(secretHash: APIKeySecret.hash(secret), in: keys)?.key.id == key.id)
        }
    }

    @Test(arguments: TestBackend.available)
    func theCacheHoldsNoMoreThanItsCapacity(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let keys = ObservedKeys(store)
            let cache = APIKeyCache(lifetime: Self.longLifetime, capacity: 3)
            for index in 0..<10 {
                let secret = APIKeySecret.generate()
                _ = try await store.createKey(KeyAndAuditRepositoryTests.newKey(secret, name: "key-\(index)"))
                let found = try await cache.key(secretHash: APIKeySecret.hash(secret), in: keys)
                #expect(found != nil)
                #expect(cache.count <= 3)
                // The key just found is kept even when the cache was full: asked again, it is not looked up.
                let lookups = keys.lookups.withLock { $0 }
                _ = try await cache.key(secretHash: APIKeySecret.hash(secret), in: keys)
                #expect(keys.lookups.withLock { $0 } == lookups)
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func aRecordedUseIsWhatTheCacheAnswersWith(backend: TestBackend) async throws {
        try await Self.withKey(backend) { keys, key, hash in
            let cache = APIKeyCache(lifetime: Self.longLifetime)
            #expect(try await cache.key(secretHash: hash, in: keys)?.key.lastUsedAt == nil)
            let now = Date()
            try await keys.recordKeyUse(id: key.id, at: now)
            cache.recordedUse(keyID: key.id, at: now)
            let lastUsed = try #require(try await cache.key(secretHash: hash, in: keys)?.key.lastUsedAt)
            #expect(abs(lastUsed.timeIntervalSince(now)) < 0.001)
            #expect(keys.lookups.withLock { $0 } == 1)
        }
    }
}
