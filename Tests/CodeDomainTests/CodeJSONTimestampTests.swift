import Foundation
import Testing

@testable import CodeDomain

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

@Suite("RFC 3339 timestamps written without Foundation's format style")
struct CodeJSONFormatTests {
    /// What `CodeJSON.format` writes by hand must be what Foundation's ISO 8601 style writes, for any date of
    /// years 1583 to 9999: random whole milliseconds and random instants between them (a failure prints the
    /// dates that differed, as seconds from the reference date, so it can be run again).
    @Test func writesWhatTheFormatStyleWrites() {
        var generator = SystemRandomNumberGenerator()
        let first = -13_190_860_800.0  // 1583-01-01T00:00:00Z, from the reference date
        let end = 252_423_993_600.0  // 10000-01-01T00:00:00Z
        var dates = [first, end.nextDown, 0, -0.0005, 0.999_9, -1, -86_400, -86_400.001, 86_399.999]
            .map(Date.init(timeIntervalSinceReferenceDate:))
        // 20,000 dates a run: the tests run side by side on two threads, and Foundation's style is slow in a
        // debug build (200,000 took seconds of a thread, which the suites with timing checks waited for).
        for _ in 0..<10_000 {
            dates.append(Date(timeIntervalSinceReferenceDate: Double.random(in: first..<end, using: &generator)))
            let millisecond = Int64.random(in: -12_212_553_600_000..<253_402_300_800_000, using: &generator)
            dates.append(Date(timeIntervalSince1970: Double(millisecond) / 1000))
        }
        // Leap days, the ends of months and centuries (1900 has no 29 February, 2000 has).
        let edges = [
            "1900-02-28T23:59:59Z", "1900-03-01T00:00:00Z", "2000-02-29T12:00:00Z", "1600-02-29T00:00:00Z", "1999-12-31T23:59:59Z",
        ]
        for text in edges {
            dates.append(try! Date(text, strategy: .iso8601))
        }
        var differing: [String] = []
        for date in dates {
            let written = CodeJSON.formatTruncatingMilliseconds(date)
            let expected = CodeJSON.millisecondsStyle.format(date)
            if written != expected { differing.append("\(date.timeIntervalSinceReferenceDate): \(written ?? "nil") != \(expected)") }
        }
        #expect(differing.isEmpty, "\(differing.prefix(5))")
    }

    /// Outside years 1583 to 9999 the style writes the timestamp (before 1583, in the Julian calendar).
    @Test func leavesOtherYearsToTheFormatStyle() {
        let years = [Date(timeIntervalSince1970: 253_402_300_800), Date(timeIntervalSince1970: -12_212_553_600.001), .distantPast]
        for date in years {
            #expect(CodeJSON.formatTruncatingMilliseconds(date) == nil)
            #expect(CodeJSON.format(date) == CodeJSON.millisecondsStyle.format(date.addingTimeInterval(0.000_5)))
        }
        #expect(CodeJSON.formatTruncatingMilliseconds(Date(timeIntervalSinceReferenceDate: .nan)) == nil)
    }
}

@Suite("RFC 3339 timestamps read without Foundation's format style")
struct CodeJSONParseTests {
    /// What `CodeJSON.parseMilliseconds` reads must be the date Foundation's style reads, to the bit, for
    /// any timestamp `format` writes: random whole milliseconds of years 1583 to 9999, the range's ends,
    /// leap days and the ends of months and centuries.
    @Test func readsWhatTheFormatStyleReads() throws {
        var generator = SystemRandomNumberGenerator()
        var texts = [
            "1583-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "1970-01-01T00:00:00.000Z", "2000-02-29T12:00:00.001Z",
            "1600-02-29T23:59:59.999Z", "1900-02-28T23:59:59.500Z", "1900-03-01T00:00:00.000Z", "2026-12-31T23:59:59.999Z",
            "2027-01-01T00:00:00.000Z", "2026-04-30T10:20:30.400Z",
        ]
        // 10,000 a run, as the format's test, for the same reason (the style is slow in a debug build).
        for _ in 0..<10_000 {
            let millisecond = Int64.random(in: -12_212_553_600_000..<253_402_300_800_000, using: &generator)
            texts.append(CodeJSON.millisecondsStyle.format(Date(timeIntervalSince1970: Double(millisecond) / 1000)))
        }
        var differing: [String] = []
        for text in texts {
            let read = CodeJSON.parseMilliseconds(text)
            let expected = try CodeJSON.millisecondsStyle.parse(text)
            if read?.timeIntervalSinceReferenceDate.bitPattern != expected.timeIntervalSinceReferenceDate.bitPattern {
                let readInterval = read.map { "\($0.timeIntervalSinceReferenceDate)" } ?? "nil"
                differing.append("\(text): \(readInterval) != \(expected.timeIntervalSinceReferenceDate)")
            }
        }
        #expect(differing.isEmpty, "\(differing.prefix(5))")
    }

    /// Anything else is left to the styles: other years, other forms, offsets, impossible dates and times.
    @Test func leavesEverythingElseToTheStyles() throws {
        let others = [
            "1582-12-31T23:59:59.999Z", "2025-11-24T16:00:00Z", "2025-11-24T16:00:00.12Z", "2025-11-24T16:00:00.1250Z",
            "2025-11-24T18:00:00.125+02:00", "2025-02-29T00:00:00.000Z", "1900-02-29T00:00:00.000Z", "2025-04-31T00:00:00.000Z",
            "2025-13-01T00:00:00.000Z", "2025-00-01T00:00:00.000Z", "2025-01-00T00:00:00.000Z", "2025-01-01T24:00:00.000Z",
            "2025-01-01T00:60:00.000Z", "2025-01-01T00:00:60.000Z", "2025-01-01t00:00:00.000Z", "2025-01-01T00:00:00.000z",
            "2025-01-01T00:00:00,000Z", "+025-01-01T00:00:00.000Z", "2025-01-01T0a:00:00.000Z", "２０２５-01-01T00:00:00.000Z",
        ]
        for text in others {
            #expect(CodeJSON.parseMilliseconds(text) == nil, "\(text)")
        }
        // The styles still read the forms they read.
        #expect(CodeJSON.parse("2025-11-24T16:00:00Z") == Date(timeIntervalSince1970: 1_764_000_000))
        #expect(CodeJSON.parse("2025-11-24T18:00:00.125+02:00") == Date(timeIntervalSince1970: 1_764_000_000.125))
    }
}
