/// An error that ends a service process with its own exit code and its description as one line on
/// stderr, instead of a crash or the generic failure code: the executables catch it around start-up and run.
public protocol ExitCodeError: Error, CustomStringConvertible {
    var exitCode: Int32 { get }
}

extension Error {
    /// Whether this error ends the process with an exit code of its own (not the generic 1): such an
    /// error is reported as itself even when it coincides with a shutdown.
    public var hasOwnExitCode: Bool {
        guard let error = self as? any ExitCodeError else { return false }
        return error.exitCode != 1
    }
}
