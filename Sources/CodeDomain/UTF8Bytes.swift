extension StringProtocol {
    /// Calls `body` with the text's UTF-8 bytes: in place when the text keeps them contiguous (a native
    /// `String` or `Substring` does), through one copy otherwise. For hashing a key or token on every
    /// request without copying a `Substring` of a header into a `String` first. Inlinable, so that callers in
    /// other modules get it specialised for `String` or `Substring`. (On Linux both keep their bytes
    /// contiguous, so the copy serves only other storage, such as bridged strings elsewhere.)
    @inlinable
    public func withUTF8Bytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        var copy = String(self)
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}
