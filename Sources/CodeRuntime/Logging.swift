import Foundation
import Logging
import NIOConcurrencyHelpers

/// One JSON object per line on standard output, the format log collectors (fluentd, Loki, CloudWatch)
/// parse without configuration. swift-log ships only a text handler, so this is the one piece of
/// logging written here.
///
/// Fields: `timestamp` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message`, then the merged
/// metadata. Hummingbird's per-request `hb.request.id` is written as `request_id`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let output: LogOutput

    public init(label: String, output: LogOutput = .standardOutput, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() {
            merged.merge(provided) { _, new in new }
        }
        if let explicit = event.metadata {
            merged.merge(explicit) { _, new in new }
        }
        var line = "{\"timestamp\":\"\(Self.timestamp())\",\"level\":\"\(event.level.rawValue)\",\"logger\":"
        JSONText.appendString(label, to: &line)
        line += ",\"message\":"
        JSONText.appendString(event.message.description, to: &line)
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line += ","
            JSONText.appendString(Self.fieldNames[key] ?? key, to: &line)
            line += ":"
            JSONText.append(value, to: &line)
        }
        line += "}\n"
        output.write(line)
    }

    /// Field names that read better than the libraries' metadata keys.
    private static let fieldNames = ["hb.request.id": "request_id"]

    private static func timestamp() -> String {
        Date.now.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}

/// Where log lines go. A lock keeps concurrent lines whole.
public final class LogOutput: Sendable {
    private let lock = NIOLock()
    private let sink: @Sendable (String) -> Void

    public init(_ sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
    }

    public static let standardOutput = LogOutput { line in
        var line = line
        line.withUTF8 { bytes in
            var remaining = UnsafeRawBufferPointer(bytes)
            while !remaining.isEmpty {
                let written = Foundation.write(STDOUT_FILENO, remaining.baseAddress, remaining.count)
                if written <= 0 { return }
                remaining = UnsafeRawBufferPointer(rebasing: remaining[written...])
            }
        }
    }

    func write(_ line: String) {
        lock.withLock { sink(line) }
    }
}

/// Minimal JSON text encoding for log lines (strings and swift-log metadata values).
enum JSONText {
    static func appendString(_ string: String, to output: inout String) {
        output.append("\"")
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": output.append("\\\"")
            case "\\": output.append("\\\\")
            case "\n": output.append("\\n")
            case "\r": output.append("\\r")
            case "\t": output.append("\\t")
            case _ where scalar.value < 0x20:
                output.append(String(format: "\\u%04x", scalar.value))
            default: output.unicodeScalars.append(scalar)
            }
        }
        output.append("\"")
    }

    static func append(_ value: Logger.Metadata.Value, to output: inout String) {
        switch value {
        case .string(let string):
            appendString(string, to: &output)
        case .stringConvertible(let number as any BinaryInteger):
            output.append(String(describing: number))
        case .stringConvertible(let number as Double) where number.isFinite:
            output.append(String(describing: number))
        case .stringConvertible(let flag as Bool):
            output.append(flag ? "true" : "false")
        case .stringConvertible(let convertible):
            appendString(convertible.description, to: &output)
        case .array(let values):
            output.append("[")
            for (index, element) in values.enumerated() {
                if index > 0 { output.append(",") }
                append(element, to: &output)
            }
            output.append("]")
        case .dictionary(let dictionary):
            output.append("{")
            for (index, (key, element)) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { output.append(",") }
                appendString(key, to: &output)
                output.append(":")
                append(element, to: &output)
            }
            output.append("}")
        }
    }
}

extension RuntimeSettings {
    /// Installs the process-wide log handler. Call once, from `main`, before anything logs. With tracing on,
    /// every line written inside a span carries its `trace_id` and `span_id`.
    public func bootstrapLogging() {
        let level = logLevel
        let provider = tracing ? ServiceTracing.loggingMetadataProvider() : nil
        let format = logFormat
        LoggingSystem.bootstrap(
            { label, provider in
                var handler: any LogHandler =
                    switch format {
                    case .json: JSONLogHandler(label: label, metadataProvider: provider)
                    case .text: StreamLogHandler.standardOutput(label: label, metadataProvider: provider)
                    }
                handler.logLevel = level
                return handler
            }, metadataProvider: provider)
    }

    public func makeLogger(label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}
