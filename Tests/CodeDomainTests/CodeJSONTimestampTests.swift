import CodeDomain
import Foundation
import Testing

@Suite("RFC 3339 timestamps")
struct CodeJSONTimestampTests {
    @Test func formatsUTCWithMilliseconds() {
        #expect(CodeJSON.format(Date(timeIntervalSince1970: 1_764_000_000.125)) == "2025-11-24T16:00:00.125Z")
        #expect(CodeJSON.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        // A leap day, formatted the same way every time (the style is built once and shared).
        let leapDay = Date(timeIntervalSince1970: 1_709_164_800.5)
        #expect(CodeJSON.format(leapDay) == "2024-02-29T00:00:00.500Z")
        #expect(CodeJSON.format(leapDay) == CodeJSON.format(leapDay))
    }

    @Test func parsesWithOrWithoutFractionalSecondsAndOffsets() throws {
        #expect(CodeJSON.parse("2025-11-24T16:00:00.125Z") == Date(timeIntervalSince1970: 1_764_000_000.125))
        #expect(CodeJSON.parse("2025-11-24T16:00:00Z") == Date(timeIntervalSince1970: 1_764_000_000))
        #expect(CodeJSON.parse("2025-11-24T18:00:00.125+02:00") == Date(timeIntervalSince1970: 1_764_000_000.125))
        let formatted = CodeJSON.format(Date(timeIntervalSince1970: 1_800_000_000.042))
        #expect(CodeJSON.parse(formatted) == Date(timeIntervalSince1970: 1_800_000_000.042))
        for text in ["", "yesterday", "2025-11-24", "2025-13-01T00:00:00Z", "2025-11-24T16:00:00.125"] {
            #expect(CodeJSON.parse(text) == nil, "\(text)")
        }
    }
}
