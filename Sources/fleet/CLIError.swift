/// A failure the CLI reports as one line on stderr with a non-zero exit status.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    /// 64 (EX_USAGE) for bad arguments or input, 69 (EX_UNAVAILABLE) when the broker cannot be reached,
    /// 1 otherwise.
    var exitCode: Int32

    init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }

    static func usage(_ message: String) -> CLIError { CLIError(message, exitCode: 64) }

    var description: String { message }
}
