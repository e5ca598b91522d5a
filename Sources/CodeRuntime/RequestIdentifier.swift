import CodeDomain
import Foundation
import HTTPTypes
import Hummingbird

public enum RequestIdentifier {
    /// Hummingbird's own key, so that `context.id` and our logs agree.
    public static let metadataKey = "hb.request.id"
    public static let maximumLength = 128

    /// The client's id when it is 1-128 characters of `A-Z a-z 0-9 . _ : -`, else a new UUID. Anything
    /// else could forge log lines or smuggle header content into downstream systems.
    public static func accepting(_ candidate: String?) -> String {
        if let candidate, isAcceptable(candidate) { return candidate }
        return generate()
    }

    /// A random (version 4) UUID, lower case. From the system generator (`getrandom`): Foundation's
    /// `UUID()` opens, reads and closes /dev/urandom for each one, three system calls on every request
    /// without an id. Written by table (`LowercaseHex`), not through `UUID.uuidString` and `lowercased()`,
    /// which format with `snprintf` and copy the text again.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return UUIDBits(version: 4, high: generator.next(), low: generator.next()).text
    }

    public static func isAcceptable(_ candidate: String) -> Bool {
        guard (1...maximumLength).contains(candidate.utf8.count) else { return false }
        return candidate.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }
}

extension HTTPField.Name {
    public static let xRequestID = HTTPField.Name("X-Request-ID")!
}

extension RequestContext {
    /// The request id the telemetry middleware assigned.
    public var requestID: String? {
        logger[metadataKey: RequestIdentifier.metadataKey].map { "\($0)" }
    }
}
