import Foundation
import Testing

@testable import CodeStore

/// New deployments' ids (TimeOrderedID.swift): `dep_` and a version 7 UUID in lowercase hex, whose first
/// 48 bits are the creation time in milliseconds, so that later ids sort later.
@Suite("Time-ordered ids")
struct TimeOrderedIDTests {
    @Test func anIdIsAVersion7UUIDInHexWithItsTimeFirst() throws {
        let date = Date(timeIntervalSince1970: 1_796_000_000.123)
        let id = TimeOrderedID.make(prefix: "dep_", at: date)
        #expect(id.hasPrefix("dep_"))
        let hex = Array(id.dropFirst(4))
        #expect(hex.count == 32)
        #expect(hex.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(UInt64(String(hex[0..<12]), radix: 16) == 1_796_000_000_123)
        #expect(hex[12] == "7", "the version")
        #expect("89ab".contains(hex[16]), "the RFC 9562 variant")
        // The same form as Foundation's UUID reads.
        let dashed = [hex[0..<8], hex[8..<12], hex[12..<16], hex[16..<20], hex[20..<32]].map { String($0) }.joined(separator: "-")
        #expect(UUID(uuidString: dashed)?.uuidString.lowercased() == dashed)
    }

    @Test func laterIdsSortLaterAndNoneRepeats() {
        // In the middle of each millisecond: a date's double is not exact at a millisecond's edge.
        let ids = (0..<2_000).map { index in
            TimeOrderedID.make(prefix: "dep_", at: Date(timeIntervalSince1970: (1_796_000_000_000 + Double(index / 2) + 0.5) / 1000))
        }
        #expect(Set(ids).count == ids.count)
        // Two ids per millisecond: ordered by their time, in any order within it.
        for index in stride(from: 2, to: ids.count, by: 2) {
            #expect(ids[index - 2] < ids[index] && ids[index - 1] < ids[index])
        }
        #expect(NewDeployment.makeID().count == 36)
    }
}
