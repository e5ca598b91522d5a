import CodeRuntime

/// Opaque list cursors: clients pass back what they got. Every value the contract's pattern allows
/// (1-12 characters of 0-9 and a-z) decodes to a position, so a well-formed cursor is never refused.
enum Cursor {
    static let maximumLength = 12

    static func encode(_ position: Int64?) -> String? {
        position.map { String($0, radix: 36) }
    }

    static func decode(_ text: String) -> Int64? {
        guard (1...maximumLength).contains(text.count), text.allSatisfy({ $0.isASCII && ($0.isNumber || $0.isLowercase) }) else {
            return nil
        }
        return Int64(text, radix: 36)
    }
}

/// Checks the query parameters of a list operation beyond their types (which the generated code
/// decodes), collecting every problem to report them together as one 400 `invalid_parameter`.
struct ListParameters {
    private(set) var errors: [ProblemDetails.FieldError] = []

    static let maximumLimit = 100

    mutating func limit(_ value: Int?, default defaultValue: Int) -> Int {
        guard let value else { return defaultValue }
        guard (1...Self.maximumLimit).contains(value) else {
            errors.append(.init(field: "limit", message: "must be an integer from 1 to \(Self.maximumLimit)"))
            return defaultValue
        }
        return value
    }

    /// An empty cursor means the first page.
    mutating func cursor(_ text: String?) -> Int64? {
        guard let text, !text.isEmpty else { return nil }
        guard let position = Cursor.decode(text) else {
            errors.append(.init(field: "cursor", message: "is not a cursor this API returned"))
            return nil
        }
        return position
    }

    mutating func check(_ name: String, _ valid: Bool, _ message: String) {
        if !valid { errors.append(.init(field: name, message: message)) }
    }

    /// Throws 400 `invalid_parameter` listing every bad parameter.
    func validate() throws {
        guard errors.isEmpty else {
            throw ServiceError(.badRequest, code: "invalid_parameter", detail: "Some query parameters are not valid.", errors: errors)
        }
    }
}
