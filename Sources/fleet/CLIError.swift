/// A failure the CLI reports as one line on stderr with a non-zero exit status.
///
/// The exit statuses (README, "Exit statuses"): 1 a failure not listed below; 3 `fleet template render` ran
/// `abort_message`; 64 (EX_USAGE) bad arguments or settings; 65 (EX_DATAERR) bad input data (lines not
/// imported or enqueued, template errors); 66 (EX_NOINPUT) what the command names does not exist (a profile,
/// a segment, a queue, a template); 69 (EX_UNAVAILABLE) the broker or a peer cannot be reached.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var exitCode: Int32

    /// 66: the profile, segment, queue or template the command names does not exist.
    static let notFound: Int32 = 66

    init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }

    static func usage(_ message: String) -> CLIError { CLIError(message, exitCode: 64) }

    /// `fleet campaign status|report|cancel` of an id the store does not know (exit 66).
    static func unknownCampaign(_ id: String) -> CLIError {
        CLIError("no campaign '\(id)' (fleet campaign send creates it)", exitCode: notFound)
    }

    var description: String { message }
}
