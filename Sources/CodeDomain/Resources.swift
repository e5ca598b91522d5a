import Foundation

/// The domain's records: what the store keeps and the worker and the API work with. Their JSON shapes
/// are the API contract's (openapi/openapi.yaml, generated into CodeAPIContract, which also converts
/// these to it), not theirs.

public struct Deployment: Sendable, Equatable, Identifiable {
    public var id: String
    public var service: String
    public var image: String
    public var imageRef: ImageReference
    public var environment: DeploymentEnvironment
    public var strategy: DeploymentStrategy
    public var replicas: Int
    public var healthURL: String?
    public var labels: [String: String]
    public var status: DeploymentStatus
    /// How many times a worker has claimed it; more than 1 means a worker took over from another.
    public var attempt: Int
    public var error: String?
    public var cancelRequested: Bool
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    public var createdBy: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(
        id: String, service: String, image: String, imageRef: ImageReference, environment: DeploymentEnvironment,
        strategy: DeploymentStrategy, replicas: Int, healthURL: String?, labels: [String: String],
        status: DeploymentStatus, attempt: Int, error: String?, cancelRequested: Bool, leaseOwner: String?,
        leaseExpiresAt: Date?, createdBy: String?, createdAt: Date, updatedAt: Date, startedAt: Date?, finishedAt: Date?
    ) {
        self.id = id
        self.service = service
        self.image = image
        self.imageRef = imageRef
        self.environment = environment
        self.strategy = strategy
        self.replicas = replicas
        self.healthURL = healthURL
        self.labels = labels
        self.status = status
        self.attempt = attempt
        self.error = error
        self.cancelRequested = cancelRequested
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// The validated specification this deployment was created from.
    public var spec: DeploymentSpec {
        DeploymentSpec(
            service: service, image: imageRef, imageText: image, environment: environment, strategy: strategy,
            replicas: replicas, healthURL: healthURL, labels: labels
        )
    }
}

/// One step of a deployment's story, written by the worker (and by the API for cancellation).
public struct DeploymentEvent: Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case started, finished, info
    }

    public enum Outcome: String, Codable, Sendable, CaseIterable {
        case succeeded, failed, cancelled, skipped
    }

    /// Position in the deployment's event list; `after` cursors refer to it.
    public var sequence: Int64
    public var deploymentID: String
    public var at: Date
    public var attempt: Int
    public var workerID: String?
    public var step: String
    public var kind: Kind
    public var outcome: Outcome?
    public var durationMs: Int64?
    public var message: String

    public init(
        sequence: Int64, deploymentID: String, at: Date, attempt: Int, workerID: String?, step: String,
        kind: Kind, outcome: Outcome?, durationMs: Int64?, message: String
    ) {
        self.sequence = sequence
        self.deploymentID = deploymentID
        self.at = at
        self.attempt = attempt
        self.workerID = workerID
        self.step = step
        self.kind = kind
        self.outcome = outcome
        self.durationMs = durationMs
        self.message = message
    }
}

/// The hardened manifests the worker renders for a deployment.
public struct DeploymentManifests: Sendable, Equatable {
    public var deploymentID: String
    public var attempt: Int
    public var renderedAt: Date
    /// A Compose file with one service.
    public var compose: String
    /// Kubernetes `Deployment` and `Service`, as one multi-document YAML stream.
    public var kubernetes: String

    public init(deploymentID: String, attempt: Int, renderedAt: Date, compose: String, kubernetes: String) {
        self.deploymentID = deploymentID
        self.attempt = attempt
        self.renderedAt = renderedAt
        self.compose = compose
        self.kubernetes = kubernetes
    }
}

public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    /// Reads deployments, their events and manifests.
    case viewer
    /// Also creates and cancels deployments.
    case `operator`
    /// Everything, including API keys and the audit log.
    case admin

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    public func allows(_ required: Role) -> Bool { self >= required }
}

/// An API key as listed: never the secret, never its hash.
public struct APIKey: Sendable, Equatable, Identifiable {
    public var id: String
    public var name: String
    public var role: Role
    /// The first characters of the secret, to tell keys apart.
    public var prefix: String
    public var createdAt: Date
    public var createdBy: String?
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(
        id: String, name: String, role: Role, prefix: String, createdAt: Date, createdBy: String?, lastUsedAt: Date?, revokedAt: Date?
    ) {
        self.id = id
        self.name = name
        self.role = role
        self.prefix = prefix
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// One mutating request, as the audit log keeps it.
public struct AuditEntry: Sendable, Equatable {
    public var sequence: Int64
    public var at: Date
    public var keyID: String?
    public var action: String
    public var target: String?
    /// `succeeded`, `failed`, `denied` (403) or `unauthenticated` (401).
    public var outcome: String
    public var status: Int
    public var requestID: String?
    public var method: String
    public var path: String
    /// The client that sent the request, when it said (e.g. `code-mcp`).
    public var client: String?

    public init(
        sequence: Int64, at: Date, keyID: String?, action: String, target: String?, outcome: String, status: Int,
        requestID: String?, method: String, path: String, client: String? = nil
    ) {
        self.sequence = sequence
        self.at = at
        self.keyID = keyID
        self.action = action
        self.target = target
        self.outcome = outcome
        self.status = status
        self.requestID = requestID
        self.method = method
        self.path = path
        self.client = client
    }
}

/// JSON coding shared by the API and its clients: RFC 3339 timestamps in UTC with milliseconds.
public enum CodeJSON {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(format(date))
        }
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 timestamp: \(text)")
            }
            return date
        }
        return decoder
    }()

    /// `2026-12-02T17:20:36.123Z`. Built once: building the style for each timestamp was a third of the time
    /// a list of 20 spent on its timestamps.
    static let millisecondsStyle: Date.ISO8601FormatStyle = .iso8601.year().month().day()
        .time(includingFractionalSeconds: true).timeZone(separator: .omitted)

    /// To the nearest millisecond. The style truncates, and a timestamp read from its own text is often a
    /// hair below it (`.589` is 0.58899999… seconds as a `Double`): truncated, a timestamp read and
    /// written again lost a millisecond.
    ///
    /// Years 1583 to 9999 are written here, digit by digit from the day count, as `millisecondsStyle`
    /// writes them (the tests compare the two over random dates of that range): the style, which goes
    /// through a Gregorian calendar's date components for each timestamp, was 4 % of a list request's CPU
    /// (docs/performance.md, twentieth round). Earlier dates, which the style writes in the Julian calendar
    /// (before the Gregorian reform of October 1582), later ones and NaN are left to the style.
    public static func format(_ date: Date) -> String {
        let shifted = date.addingTimeInterval(0.000_5)
        return formatTruncatingMilliseconds(shifted) ?? millisecondsStyle.format(shifted)
    }

    /// `date` as `millisecondsStyle` writes it (milliseconds truncated), or nil outside years 1583 to 9999.
    static func formatTruncatingMilliseconds(_ date: Date) -> String? {
        // From the reference date, which a `Date` holds: counted from 1970, the fraction would lose bits.
        let interval = date.timeIntervalSinceReferenceDate
        // 1583-01-01T00:00:00Z and 10000-01-01T00:00:00Z; also false for NaN.
        guard interval >= -13_190_860_800, interval < 252_423_993_600 else { return nil }
        let wholeSeconds = interval.rounded(.down)
        let millisecond = min(999, Int((interval - wholeSeconds) * 1000))
        let seconds = Int(wholeSeconds) + 978_307_200  // 2001-01-01 from 1970-01-01
        let (days, secondOfDay) = seconds.quotientAndRemainder(dividingBy: 86_400)
        let (year, month, day) = civilDate(daysSince1970: secondOfDay < 0 ? days - 1 : days)
        let second = secondOfDay < 0 ? secondOfDay + 86_400 : secondOfDay
        return String(unsafeUninitializedCapacity: 24) { text in
            func put(_ value: Int, digits: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                    text[index] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            put(year, digits: 4, at: 0)
            text[4] = UInt8(ascii: "-")
            put(month, digits: 2, at: 5)
            text[7] = UInt8(ascii: "-")
            put(day, digits: 2, at: 8)
            text[10] = UInt8(ascii: "T")
            put(second / 3600, digits: 2, at: 11)
            text[13] = UInt8(ascii: ":")
            put(second / 60 % 60, digits: 2, at: 14)
            text[16] = UInt8(ascii: ":")
            put(second % 60, digits: 2, at: 17)
            text[19] = UInt8(ascii: ".")
            put(millisecond, digits: 3, at: 20)
            text[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    /// The proleptic Gregorian date `days` days after 1970-01-01 (Howard Hinnant's `civil_from_days`,
    /// http://howardhinnant.github.io/date_algorithms.html: days counted in 400-year eras from 0000-03-01,
    /// so that February's leap day ends each year).
    static func civilDate(daysSince1970 days: Int) -> (year: Int, month: Int, day: Int) {
        let fromEra0 = days + 719_468
        let era = (fromEra0 >= 0 ? fromEra0 : fromEra0 - 146_096) / 146_097
        let dayOfEra = fromEra0 - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Any fraction of a second, or none.
    private static let wholeSecondsStyle = Date.ISO8601FormatStyle()

    /// An RFC 3339 timestamp: any fraction of a second or none, any UTC offset.
    ///
    /// What `format` writes (years 1583 to 9999, milliseconds, `Z`) is read here, as `millisecondsStyle`
    /// reads it (the tests compare the two over random dates): the style was 3 % of code-mcp's CPU on a list
    /// of 20, whose 80 timestamps the generated client decodes (docs/performance.md, twenty-first round).
    /// Anything else, an impossible date included, is left to the styles.
    public static func parse(_ text: String) -> Date? {
        parseMilliseconds(text) ?? (try? millisecondsStyle.parse(text)) ?? (try? wholeSecondsStyle.parse(text))
    }

    /// `YYYY-MM-DDTHH:MM:SS.sssZ` of a year 1583 to 9999 and a day the month has, or nil.
    static func parseMilliseconds(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { utf8 -> Date? in
            guard utf8.count == 24, utf8[4] == UInt8(ascii: "-"), utf8[7] == UInt8(ascii: "-"), utf8[10] == UInt8(ascii: "T"),
                utf8[13] == UInt8(ascii: ":"), utf8[16] == UInt8(ascii: ":"), utf8[19] == UInt8(ascii: "."),
                utf8[23] == UInt8(ascii: "Z")
            else { return nil }
            func number(at offset: Int, digits: Int) -> Int? {
                var value = 0
                for index in offset..<offset + digits {
                    let digit = Int(utf8[index]) - Int(UInt8(ascii: "0"))
                    guard digit >= 0, digit <= 9 else { return nil }
                    value = value * 10 + digit
                }
                return value
            }
            guard let year = number(at: 0, digits: 4), year >= 1583, let month = number(at: 5, digits: 2), (1...12).contains(month),
                let day = number(at: 8, digits: 2), day >= 1, day <= daysIn(month: month, year: year),
                let hour = number(at: 11, digits: 2), hour < 24, let minute = number(at: 14, digits: 2), minute < 60,
                let second = number(at: 17, digits: 2), second < 60, let millisecond = number(at: 20, digits: 3)
            else { return nil }
            let days = daysSince1970(year: year, month: month, day: day)
            let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - 978_307_200  // from 2001-01-01
            return Date(timeIntervalSinceReferenceDate: Double(seconds) + Double(millisecond) / 1000)
        }
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// The days from 1970-01-01 to a proleptic Gregorian date: `civilDate`'s inverse (Hinnant's
    /// `days_from_civil`).
    static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
        let marchYear = month <= 2 ? year - 1 : year
        let era = (marchYear >= 0 ? marchYear : marchYear - 399) / 400
        let yearOfEra = marchYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
