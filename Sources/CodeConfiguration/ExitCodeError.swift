/// An error that ends a service process with its own exit code and its description as one line on
/// stderr, instead of a crash or the generic failure code: the executables catch it around start-up and run.
public protocol ExitCodeError: Error, CustomStringConvertible {
    var exitCode: Int32 { get }
}
