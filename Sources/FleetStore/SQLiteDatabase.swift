import CSQLite

/// A thin wrapper over one SQLite connection.
///
/// Not thread-safe: callers must serialize all use of a database and of its statements (for instance by confining
/// it to one serial `DispatchQueue`). The connection is opened in WAL mode with `synchronous=NORMAL`, a busy
/// timeout and foreign keys on, so several processes can share the file; write through `transaction(_:)`, which
/// takes the write lock up front (`BEGIN IMMEDIATE`).
public final class SQLiteDatabase {
    /// The path the database was opened with.
    public let path: String
    /// The journal mode SQLite reports after opening (`"wal"` for files; `"memory"` for in-memory databases).
    public private(set) var journalMode: String = ""
    private var connection: OpaquePointer?
    private var statements: [String: SQLiteStatement] = [:]

    /// The default busy timeout, in milliseconds.
    public static let defaultBusyTimeout: Int32 = 5000

    /// Opens (and with `create`, creates) the database at `path`.
    ///
    /// - Parameters:
    ///   - path: a file path, or `":memory:"`.
    ///   - create: whether to create the file if it does not exist.
    ///   - busyTimeout: how long, in milliseconds, to wait for another connection's lock before failing with
    ///     `SQLITE_BUSY`.
    public init(path: String, create: Bool = true, busyTimeout: Int32 = SQLiteDatabase.defaultBusyTimeout) throws {
        self.path = path
        var flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        if create {
            flags |= SQLITE_OPEN_CREATE
        }
        var handle: OpaquePointer?
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let error = SQLiteError(code: code, connection: handle)
            // A handle is returned even on most failures and must be released.
            sqlite3_close_v2(handle)
            throw SQLiteError(code: error.code, message: "cannot open \(path): \(error.message)")
        }
        self.connection = handle
        do {
            // First, so that the pragmas below wait for other processes instead of failing.
            try check(sqlite3_busy_timeout(handle, max(0, busyTimeout)))
            let statement = try prepare("PRAGMA journal_mode=WAL")
            defer { statement.finalize() }
            journalMode = try statement.step() ? statement.string(at: 0)?.lowercased() ?? "" : ""
            try execute("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
    }

    /// Whether the database is open.
    public var isOpen: Bool { connection != nil }

    /// Finalizes the cached statements and closes the connection. Idempotent.
    ///
    /// Statements created with `prepare(_:)` and still alive keep the connection's memory until they are
    /// finalized, but can no longer be used.
    public func close() {
        for statement in statements.values {
            statement.finalize()
        }
        statements.removeAll()
        guard let connection else { return }
        // sqlite3_close_v2 only fails on misuse (an invalid handle); unfinalized statements defer the close.
        sqlite3_close_v2(connection)
        self.connection = nil
    }

    // MARK: - Running SQL

    /// Runs a script of zero or more statements separated by semicolons, ignoring any rows.
    public func execute(_ sql: String) throws {
        let connection = try open()
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(connection, sql, nil, nil, &message)
        guard code == SQLITE_OK else {
            let text = message.map { String(cString: $0) }
            sqlite3_free(message)
            if let text {
                throw SQLiteError(code: code, message: text, sql: sql)
            }
            throw SQLiteError(code: code, connection: connection, sql: sql)
        }
    }

    /// Prepares an uncached statement owned by the caller.
    public func prepare(_ sql: String) throws -> SQLiteStatement {
        try SQLiteStatement(connection: open(), sql: sql)
    }

    /// Runs `body` with the cached prepared statement for `sql`, preparing it on first use.
    ///
    /// The statement is handed over reset with its bindings cleared, and is reset again afterwards (ending its
    /// implicit read transaction), so `body` may stop stepping early. Do not keep it beyond `body`.
    public func withStatement<Result>(
        _ sql: String, _ body: (SQLiteStatement) throws -> Result
    ) throws -> Result {
        let statement: SQLiteStatement
        if let cached = statements[sql] {
            statement = cached
        } else {
            statement = try SQLiteStatement(connection: open(), sql: sql)
            statements[sql] = statement
        }
        statement.reset()
        statement.clearBindings()
        defer { statement.reset() }
        return try body(statement)
    }

    /// The number of statements in the statement cache.
    public var cachedStatementCount: Int { statements.count }

    /// The number of rows changed by the most recent INSERT, UPDATE or DELETE.
    public var changes: Int {
        guard let connection else { return 0 }
        return Int(sqlite3_changes64(connection))
    }

    /// Whether a transaction is open.
    public var isInTransaction: Bool {
        guard let connection else { return false }
        return sqlite3_get_autocommit(connection) == 0
    }

    /// The value of a run-time limit (`SQLITE_LIMIT_VARIABLE_NUMBER`, ...).
    public func limit(_ category: Int32) -> Int {
        guard let connection else { return 0 }
        return Int(sqlite3_limit(connection, category, -1))
    }

    // MARK: - Transactions

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: committed if `body` returns, rolled back if it throws.
    ///
    /// `BEGIN IMMEDIATE` takes the write lock at once (waiting up to the busy timeout), so a transaction that
    /// reads then writes cannot fail halfway with `SQLITE_BUSY` when other processes write the same file.
    public func transaction<Result>(_ body: () throws -> Result) throws -> Result {
        try withStatement("BEGIN IMMEDIATE") { try $0.run() }
        do {
            let result = try body()
            try withStatement("COMMIT") { try $0.run() }
            return result
        } catch {
            if isInTransaction {
                do {
                    try withStatement("ROLLBACK") { try $0.run() }
                } catch {
                    // The original error is the useful one; SQLite rolls back on close in any case.
                }
            }
            throw error
        }
    }

    // MARK: - Schema version

    /// `PRAGMA user_version`, the schema version used by `Migrator`.
    public func userVersion() throws -> Int {
        try withStatement("PRAGMA user_version") { statement in
            guard try statement.step() else { return 0 }
            return statement.int(at: 0)
        }
    }

    /// Sets `PRAGMA user_version`.
    public func setUserVersion(_ version: Int) throws {
        guard let value = Int32(exactly: version) else {
            throw SQLiteError(code: SQLITE_RANGE, message: "user_version \(version) does not fit in 32 bits")
        }
        // Pragmas take no parameters; the value is an integer, so formatting it in is safe.
        try execute("PRAGMA user_version = \(value)")
    }

    // MARK: - Private

    private func open() throws -> OpaquePointer {
        guard let connection else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "database \(path) is closed")
        }
        return connection
    }

    private func check(_ code: Int32) throws {
        guard code == SQLITE_OK else {
            throw SQLiteError(code: code, connection: connection)
        }
    }
}
