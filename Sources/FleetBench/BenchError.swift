/// A benchmark that could not run: a code to match on (which carries the exit status the CLI ends with) and a
/// message for people, printed as one line.
///
/// Codes are structs over a private enum (as ``AMQPError``'s), so new codes can be added without breaking
/// users' `switch` statements.
public struct BenchError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: String, Sendable {
            case failed
            case templateAborted = "template_aborted"
            case usage
            case badData = "bad_data"
            case unavailable
            case workload
        }
        fileprivate let value: Value
        private init(_ value: Value) { self.value = value }

        /// A failure not listed below (a run that broke, a peer that misbehaved): exit status 1.
        public static let failed = Code(.failed)
        /// A benchmark template ran `abort_message`: exit status 3, as `fleet template render`.
        public static let templateAborted = Code(.templateAborted)
        /// Bad options: a shared directory or repository that cannot be found: exit status 64 (EX_USAGE).
        public static let usage = Code(.usage)
        /// Bad input data: a workload file or template that does not parse: exit status 65 (EX_DATAERR).
        public static let badData = Code(.badData)
        /// A peer, a helper program or the workload generator cannot be run: exit status 69 (EX_UNAVAILABLE).
        public static let unavailable = Code(.unavailable)
        /// The workload could not be prepared (its profiles not imported): exit status 70.
        public static let workload = Code(.workload)

        /// The exit status the CLI ends with (README, "Exit statuses").
        public var exitStatus: Int32 {
            switch value {
            case .failed: 1
            case .templateAborted: 3
            case .usage: 64
            case .badData: 65
            case .unavailable: 69
            case .workload: 70
            }
        }

        public var description: String { value.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, one line.
    public var message: String

    public init(_ message: String, code: Code = .failed) {
        self.code = code
        self.message = message
    }

    /// Bad options (exit status 64).
    static func usage(_ message: String) -> BenchError { BenchError(message, code: .usage) }

    public var description: String { message }

    /// Runs `body`; an error it throws that is not a ``BenchError`` becomes `bench failed: <the error>` (exit status 1).
    static func failing<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as BenchError {
            throw error
        } catch {
            throw BenchError("bench failed: \(error)")
        }
    }
}
