import CodeDomain
import Foundation

/// New deployments' ids: a version 7 UUID (RFC 9562) as 32 lowercase hex digits after the prefix: the
/// creation time in milliseconds first, then 74 random bits from the system generator (`getrandom`).
///
/// Why the time first: ids made in a later millisecond sort later (within one, in any order), so the
/// unique index on `deployments.id` and the
/// events' index on `(deployment_id, seq)` grow at their right edge, as the tables do. With random
/// (version 4) ids each create added to two index leaves of its own, anywhere in the file, and wrote
/// them to SQLite's WAL on its own; creates committed together now share them (docs/performance.md,
/// thirteenth round); PostgreSQL's B-trees gain the same way. The 74 random bits keep ids unique and
/// unguessable; the time they carry is within a moment of the deployment's `created_at`, which the API
/// shows anyway.
enum TimeOrderedID {
    static func make(prefix: String, at date: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        let milliseconds = UInt64(max(0, (date.timeIntervalSince1970 * 1000).rounded(.down))) & 0xFFFF_FFFF_FFFF
        // 48 bits of time, then (UUIDBits sets the version and variant) 12 and 62 random bits.
        return UUIDBits(version: 7, high: milliseconds << 16 | (generator.next() as UInt64) & 0x0FFF, low: generator.next())
            .hex(prefix: prefix)
    }
}
