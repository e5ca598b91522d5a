import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

extension ResponseBody {
    /// The same body, calling `completion` once it has been written or writing failed. (Hummingbird has
    /// this as `withPostWriteClosure`, but only for its own package.)
    func afterWriting(_ completion: @escaping @Sendable () -> Void) -> ResponseBody {
        let body = self
        return ResponseBody(contentLength: body.contentLength) { writer in
            defer { completion() }
            try await body.write(writer)
        }
    }

    /// The same body as one buffer, when it declares a length of at most `limit` bytes; else unchanged.
    ///
    /// Hummingbird writes a buffer body with its head in one write and flush, and any other body as head,
    /// parts and end, each written and flushed on its own. swift-openapi-hummingbird answers with the
    /// latter even for a JSON body it holds in memory: collecting it first saves two writes and flushes a
    /// response (~15 % of the CPU of a small API answer, docs/performance.md).
    func collected(limit: Int) async throws -> ResponseBody {
        guard let length = contentLength, length <= limit else { return self }
        let collector = BodyCollector(capacity: length)
        try await write(collector)
        let (buffer, trailers) = collector.result
        guard let trailers else { return ResponseBody(byteBuffer: buffer) }
        return ResponseBody(contentLength: buffer.readableBytes) { writer in
            try await writer.write(buffer)
            try await writer.finish(trailers)
        }
    }
}

/// A body writer that keeps what is written.
private struct BodyCollector: ResponseBodyWriter {
    private let state: NIOLockedValueBox<(buffer: ByteBuffer, trailers: HTTPFields?)>

    init(capacity: Int) {
        state = NIOLockedValueBox((ByteBufferAllocator().buffer(capacity: capacity), nil))
    }

    var result: (ByteBuffer, HTTPFields?) { state.withLockedValue { ($0.buffer, $0.trailers) } }

    mutating func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        state.withLockedValue { _ = $0.buffer.writeBuffer(&buffer) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        state.withLockedValue { $0.trailers = trailingHeaders }
    }
}
