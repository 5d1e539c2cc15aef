import FleetCore
import CSQLite

/// An error reported by SQLite, or by the store on top of it.
///
/// `code` is a primary SQLite result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, ...). Errors raised by the store
/// itself (misuse such as using a closed database or ledger) use `SQLITE_MISUSE`.
public struct SQLiteError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The SQLite result code.
    public let code: Int32
    /// A human-readable message, usually `sqlite3_errmsg` of the connection.
    public let message: String
    /// The SQL being run when the error happened, if any.
    public let sql: String?

    /// Creates an error.
    public init(code: Int32, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    /// Creates an error from the connection's current error state.
    init(code: Int32, connection: OpaquePointer?, sql: String? = nil) {
        let message: String
        if let connection, let text = sqlite3_errmsg(connection) {
            message = String(cString: text)
        } else if let text = sqlite3_errstr(code) {
            message = String(cString: text)
        } else {
            message = "SQLite error \(code)"
        }
        self.init(code: code, message: message, sql: sql)
    }

    /// Whether the error is `SQLITE_BUSY` or `SQLITE_LOCKED` (a lock could not be taken in time).
    public var isBusy: Bool {
        let primary = code & 0xFF
        return primary == SQLITE_BUSY || primary == SQLITE_LOCKED
    }

    public var description: String {
        var text = "SQLite error \(code): \(message)"
        if let sql {
            text += " (SQL: \(sql))"
        }
        return text
    }
}

extension SQLiteError: JobErrorConvertible {
    /// A database the job could not use (locked past the busy timeout, disk full, closed): retryable
    /// `store_unavailable`, whatever handler met it.
    public var jobError: JobError {
        JobError.retryable(JobError.storeUnavailable, "the store is unavailable: SQLite error \(code): \(message)")
    }
}
