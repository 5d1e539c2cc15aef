import CSQLite

/// A prepared SQLite statement.
///
/// Parameter indexes are 1-based (as in SQLite); column indexes are 0-based. Like its `SQLiteDatabase`, a statement
/// is not thread-safe: use it only where the connection is used. The statement is finalized on deinit or `finalize()`.
public final class SQLiteStatement {
    /// The SQL text the statement was prepared from.
    public let sql: String
    private var handle: OpaquePointer?
    private let connection: OpaquePointer

    /// Prepares `sql` (a single statement) on `connection`.
    init(connection: OpaquePointer, sql: String) throws {
        self.connection = connection
        self.sql = sql
        // `tail` points into the C string: check it while that string is alive (the implicit String-to-
        // pointer bridge would free it when sqlite3_prepare_v3 returns).
        let (code, prepared, trailingSQL) = sql.withCString { text -> (Int32, OpaquePointer?, Bool) in
            var statement: OpaquePointer?
            var tail: UnsafePointer<CChar>?
            let code = sqlite3_prepare_v3(connection, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, &tail)
            let trailing = tail.map { $0.pointee != 0 && !String(cString: $0).allSatisfy(\.isWhitespace) } ?? false
            return (code, statement, trailing)
        }
        guard code == SQLITE_OK else {
            sqlite3_finalize(prepared)
            throw SQLiteError(code: code, connection: connection, sql: sql)
        }
        guard let statement = prepared else {
            // Empty SQL or only a comment: nothing to run.
            throw SQLiteError(code: SQLITE_MISUSE, message: "no SQL statement to prepare", sql: sql)
        }
        if trailingSQL {
            sqlite3_finalize(statement)
            throw SQLiteError(
                code: SQLITE_MISUSE, message: "more than one statement; use SQLiteDatabase.execute for scripts",
                sql: sql)
        }
        self.handle = statement
    }

    deinit {
        finalize()
    }

    /// Finalizes the statement. Further use throws `SQLITE_MISUSE`. Idempotent.
    public func finalize() {
        guard let handle else { return }
        // sqlite3_finalize repeats the error of the last step, which `step()` has already thrown.
        sqlite3_finalize(handle)
        self.handle = nil
    }

    // MARK: - Binding

    /// The number of parameters of the statement.
    public var parameterCount: Int {
        guard let handle else { return 0 }
        return Int(sqlite3_bind_parameter_count(handle))
    }

    /// Binds a 64-bit integer to the 1-based parameter `index`.
    public func bind(_ value: Int64, at index: Int) throws {
        let (statement, position) = try target(index)
        try check(sqlite3_bind_int64(statement, position, value))
    }

    /// Binds an integer to the 1-based parameter `index`.
    public func bind(_ value: Int, at index: Int) throws {
        try bind(Int64(value), at: index)
    }

    /// Binds a double to the 1-based parameter `index`.
    public func bind(_ value: Double, at index: Int) throws {
        let (statement, position) = try target(index)
        try check(sqlite3_bind_double(statement, position, value))
    }

    /// Binds UTF-8 text to the 1-based parameter `index` (embedded NULs are kept; the empty string stays non-NULL).
    public func bind(_ value: String, at index: Int) throws {
        let (statement, position) = try target(index)
        var text = value
        let code = text.withUTF8 { buffer -> Int32 in
            // A nil pointer would bind NULL, so the empty string gets a real (empty) C string.
            guard let base = buffer.baseAddress, buffer.count > 0 else {
                return sqlite3_bind_text(statement, position, "", 0, fleet_sqlite_transient())
            }
            return base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { chars in
                sqlite3_bind_text64(
                    statement, position, chars, sqlite3_uint64(buffer.count), fleet_sqlite_transient(),
                    UInt8(SQLITE_UTF8))
            }
        }
        try check(code)
    }

    /// Binds a blob to the 1-based parameter `index` (the empty array binds an empty blob, not NULL).
    public func bind(_ value: [UInt8], at index: Int) throws {
        let (statement, position) = try target(index)
        let code = value.withUnsafeBytes { buffer -> Int32 in
            guard let base = buffer.baseAddress, buffer.count > 0 else {
                return sqlite3_bind_zeroblob(statement, position, 0)
            }
            return sqlite3_bind_blob64(
                statement, position, base, sqlite3_uint64(buffer.count), fleet_sqlite_transient())
        }
        try check(code)
    }

    /// Binds NULL to the 1-based parameter `index`.
    public func bindNull(at index: Int) throws {
        let (statement, position) = try target(index)
        try check(sqlite3_bind_null(statement, position))
    }

    /// Sets every parameter back to NULL.
    public func clearBindings() {
        guard let handle else { return }
        // Always returns SQLITE_OK.
        sqlite3_clear_bindings(handle)
    }

    // MARK: - Running

    /// Runs one step. Returns `true` if a row is available, `false` when the statement is done.
    @discardableResult
    public func step() throws -> Bool {
        guard let handle else { throw closedError() }
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw SQLiteError(code: code, connection: connection, sql: sql)
        }
    }

    /// Steps until done, ignoring any rows.
    public func run() throws {
        while try step() {}
    }

    /// Resets the statement so it can run again; bindings are kept (see `clearBindings()`).
    ///
    /// Resetting also ends the statement's implicit read transaction, so always reset (or finalize) a statement you
    /// stopped reading early.
    public func reset() {
        guard let handle else { return }
        // sqlite3_reset only repeats the error of the last step, which `step()` has already thrown.
        sqlite3_reset(handle)
    }

    // MARK: - Columns

    /// The number of columns of the result rows.
    public var columnCount: Int {
        guard let handle else { return 0 }
        return Int(sqlite3_column_count(handle))
    }

    /// Whether column `index` (0-based) of the current row is NULL.
    public func isNull(at index: Int) -> Bool {
        columnType(index) == SQLITE_NULL
    }

    /// Column `index` (0-based) of the current row as an integer (0 for NULL).
    public func int64(at index: Int) -> Int64 {
        guard let handle, let column = column(index) else { return 0 }
        return sqlite3_column_int64(handle, column)
    }

    /// Column `index` (0-based) of the current row as an `Int` (0 for NULL).
    public func int(at index: Int) -> Int {
        Int(truncatingIfNeeded: int64(at: index))
    }

    /// Column `index` (0-based) of the current row as a double (0 for NULL).
    public func double(at index: Int) -> Double {
        guard let handle, let column = column(index) else { return 0 }
        return sqlite3_column_double(handle, column)
    }

    /// Column `index` (0-based) of the current row as text, or nil for NULL.
    public func string(at index: Int) -> String? {
        guard let handle, let column = column(index), sqlite3_column_type(handle, column) != SQLITE_NULL else {
            return nil
        }
        // Text first, then its length (the documented order).
        guard let text = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    /// Column `index` (0-based) of the current row as bytes, or nil for NULL.
    public func blob(at index: Int) -> [UInt8]? {
        guard let handle, let column = column(index), sqlite3_column_type(handle, column) != SQLITE_NULL else {
            return nil
        }
        // Blob first, then its length (the documented order). A zero-length blob has a nil pointer.
        guard let bytes = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }

    // MARK: - Private

    private func columnType(_ index: Int) -> Int32 {
        guard let handle, let column = column(index) else { return SQLITE_NULL }
        return sqlite3_column_type(handle, column)
    }

    private func column(_ index: Int) -> Int32? {
        guard let handle, index >= 0, index < Int(sqlite3_column_count(handle)) else { return nil }
        return Int32(index)
    }

    private func target(_ index: Int) throws -> (OpaquePointer, Int32) {
        guard let handle else { throw closedError() }
        guard let position = Int32(exactly: index), position >= 1 else {
            throw SQLiteError(code: SQLITE_RANGE, message: "parameter index \(index) out of range", sql: sql)
        }
        return (handle, position)
    }

    private func check(_ code: Int32) throws {
        guard code == SQLITE_OK else {
            throw SQLiteError(code: code, connection: connection, sql: sql)
        }
    }

    private func closedError() -> SQLiteError {
        SQLiteError(code: SQLITE_MISUSE, message: "statement is finalized", sql: sql)
    }
}
