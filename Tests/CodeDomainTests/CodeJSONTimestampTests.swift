import CodeDomain
import Foundation
import Testing

@Suite("RFC 3339 timestamps")
struct CodeJSONTimestampTests {
    @Test func formatsUTCWithMilliseconds() {
        #expect(CodeJSON.format(Date(timeIntervalSince1970: 1_764_000_000.125)) == "2025-11-24T16:00:00.125Z")
        #expect(CodeJSON.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(CodeJSON.format(Date(timeIntervalSince1970: 1_709_164_800.5)) == "2024-02-29T00:00:00.500Z")
    }

    @Test func parsesWithOrWithoutFractionalSecondsAndOffsets() throws {
        #expect(CodeJSON.parse("2025-11-24T16:00:00.125Z") == Date(timeIntervalSince1970: 1_764_000_000.125))
        #expect(CodeJSON.parse("2025-11-24T16:00:00Z") == Date(timeIntervalSince1970: 1_764_000_000))
        #expect(CodeJSON.parse("2025-11-24T18:00:00.125+02:00") == Date(timeIntervalSince1970: 1_764_000_000.125))
        // To the nearest millisecond, and every millisecond survives a round trip: read back and written
        // again, a timestamp is the same text (truncating, `.589` came back as `.588`).
        #expect(CodeJSON.format(Date(timeIntervalSince1970: 1_800_000_000.0427)) == "2027-01-15T08:00:00.043Z")
        #expect(CodeJSON.format(Date(timeIntervalSince1970: 1_800_000_000.0421)) == "2027-01-15T08:00:00.042Z")
        for millisecond in 0..<1000 {
            let text = CodeJSON.format(Date(timeIntervalSince1970: 1_796_000_000 + Double(millisecond) / 1000))
            let parsed = try #require(CodeJSON.parse(text))
            #expect(CodeJSON.format(parsed) == text)
            #expect((parsed.timeIntervalSince1970 * 1000).rounded() == 1_796_000_000_000 + Double(millisecond))
        }
        for text in ["", "yesterday", "2025-11-24", "2025-13-01T00:00:00Z", "2025-11-24T16:00:00.125"] {
            #expect(CodeJSON.parse(text) == nil, "\(text)")
        }
    }
}
