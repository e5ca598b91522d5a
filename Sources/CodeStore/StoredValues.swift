import Foundation

// How domain values are stored, the same in both databases (see SchemaMigrations): timestamps as integer
// milliseconds since the Unix epoch (sortable, exact, free of either database's time zone rules), flags as
// 0/1 integers, labels as a JSON object in text.

extension Date {
    /// The stored form of a timestamp.
    var millisecondsSinceEpoch: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    init(millisecondsSinceEpoch milliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}

enum StoredLabels {
    /// Sorted keys, so that equal labels are stored as equal text.
    static func encode(_ labels: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(labels), as: UTF8.self)
    }

    static func decode(_ text: String) throws -> [String: String] {
        // Most deployments have no labels: no decoder for those (it was a decoder per row of a list).
        if text == "{}" { return [:] }
        do {
            return try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
        } catch {
            throw StoreError.corruptRow("labels are not a JSON object of strings")
        }
    }
}

extension RawRepresentable where RawValue == String {
    /// A domain enumeration from the text column that holds its raw value.
    init(stored text: String, column: String) throws {
        guard let value = Self(rawValue: text) else { throw StoreError.corruptRow("\(column) has an unknown value '\(text)'") }
        self = value
    }
}

extension Duration {
    var seconds: TimeInterval { self / .seconds(1) }
}

extension Duration {
    /// Whole milliseconds, as lease lengths are stored.
    var wholeMilliseconds: Int64 { Int64(self / .milliseconds(1)) }
}
