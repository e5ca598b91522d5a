import Foundation
import Synchronization

/// Keys found by the hash of their secret, kept for at most `lifetime`, so that a client's requests do not
/// each look their key up in the database. code-api keeps them a second at most (`longestLifetime`,
/// `CODE_KEY_CACHE_SECONDS`).
///
/// The bound this keeps (docs/architecture.md, the request path): a key revoked through this process is
/// refused by it at once (`forget`); a key revoked through another replica is refused here at most `lifetime` after
/// the revocation was committed, because an entry's lifetime counts from before the lookup that found it,
/// so any lookup that could have missed the revocation began before it. Only keys that were found are
/// kept: a key created a moment ago is never refused for having been unknown. Revoked keys are kept like
/// any other (revocation is for good), so a revoked key's requests cost no lookup either.
///
/// At most `capacity` entries: when it is full, the expired ones go, and if none had expired (more distinct
/// keys in one lifetime than it holds), all of them. Memory stays bounded whatever clients send.
public final class APIKeyCache: Sendable {
    /// The longest lifetime code-api allows: the bound on revocation across replicas that its documentation
    /// promises.
    public static let longestLifetime: Duration = .seconds(1)

    private struct Entry {
        var stored: StoredAPIKey
        var expires: ContinuousClock.Instant
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Bumped by every `forget` (every revocation through this process): a lookup that began before one
        /// keeps nothing it found.
        var forgetGeneration = 0
    }

    public let lifetime: Duration
    public let capacity: Int
    private let state = Mutex(State())

    /// - Precondition: `lifetime` and `capacity` are positive.
    public init(lifetime: Duration, capacity: Int = 1024) {
        precondition(lifetime > .zero, "a key cache's lifetime must be positive")
        precondition(capacity > 0, "a key cache must hold at least one key")
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// The number of keys held now, expired ones included.
    public var count: Int { state.withLock { $0.entries.count } }

    /// The key with this secret hash: from the cache while its entry lasts, otherwise from `keys`.
    public func key(secretHash: String, in keys: any APIKeyRepository) async throws -> StoredAPIKey? {
        let (cached, generation) = state.withLock { ($0.entries[secretHash], $0.forgetGeneration) }
        // Read after the entry, so that an entry is never judged by a time from before it was read, and
        // before the lookup: a new entry must not outlive a revocation committed while the lookup ran.
        let checkedAt = ContinuousClock.now
        if let cached, checkedAt < cached.expires { return cached.stored }
        guard let stored = try await keys.key(secretHash: secretHash) else { return nil }
        let entry = Entry(stored: stored, expires: checkedAt.advanced(by: lifetime))
        state.withLock { state in
            // This process revoked a key while the lookup ran: what it found may be from before that.
            guard state.forgetGeneration == generation else { return }
            if state.entries.count >= capacity, state.entries[secretHash] == nil {
                let now = ContinuousClock.now
                state.entries = state.entries.filter { now < $0.value.expires }
                if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            }
            state.entries[secretHash] = entry
        }
        return stored
    }

    /// Drops the key with this id: called when this process revokes it (after the revocation is committed),
    /// so that it is refused at once, even by a request whose lookup was under way.
    public func forget(keyID: String) {
        state.withLock { state in
            state.forgetGeneration += 1
            state.entries = state.entries.filter { $0.value.stored.key.id != keyID }
        }
    }

    /// Notes that the key's use at `date` was recorded, so that its cached entry does not keep answering
    /// with the older `lastUsedAt` (and have each request of its lifetime record the use again).
    public func recordedUse(keyID: String, at date: Date) {
        state.withLock { state in
            for (hash, entry) in state.entries where entry.stored.key.id == keyID {
                state.entries[hash]?.stored.key.lastUsedAt = date
            }
        }
    }
}
