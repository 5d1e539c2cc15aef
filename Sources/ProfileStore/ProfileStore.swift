import CSQLite
import Dispatch
import FleetCore
import FleetStore
import Logging
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The shared profile store: profiles, identities, events, consents, devices, suppressions, the catalog and
/// segments, in one SQLite file per host (the runtime's job ledger lives in the same file), shared by every
/// worker process of the host.
///
/// Writes go through one dedicated serial `DispatchQueue` with group commit: concurrent `apply` calls are
/// queued and applied together in one `BEGIN IMMEDIATE` transaction, each operation in its own savepoint (a
/// rejected operation rolls back alone; nothing is half applied). Several processes serialize on SQLite's
/// write lock (busy timeout 5 s). Reads use a small pool of read connections, each on its own serial queue
/// (WAL: readers run alongside the writer). No SQLite call ever runs on Swift's cooperative pool.
///
/// Opening is lazy: the first call opens (creating and migrating) the file on the writer queue.
///
/// Erasure: `PRAGMA secure_delete` zeroes deleted rows, and after a commit that erased someone the store
/// checkpoints the WAL with `TRUNCATE`, so no byte of the person's data stays in the database or WAL file
/// (only hashes of their addresses, as suppressions).
public final class ProfileStore: Sendable {
    /// The path of the SQLite file.
    public let path: String

    private let logger: Logger
    private let writeQueue = DispatchQueue(label: "fleet.profiles.writer")
    private let state = Mutex(State())
    /// Confined to `writeQueue`.
    private nonisolated(unsafe) var writer: ProfileWriter?
    private let readers: [ReaderSlot]
    private let nextReader = Atomic<Int>(0)
    private let opened = Atomic<Bool>(false)

    /// Creates a store on `path` (nothing is opened until the first call).
    ///
    /// - Parameter readers: read connections in the pool (each with its own queue).
    public init(path: String, readers: Int = 2, logger: Logger = Logger(label: "fleet.profiles")) {
        self.path = path
        var logger = logger
        logger[metadataKey: "store.path"] = "\(path)"
        self.logger = logger
        self.readers = (0..<max(1, readers)).map { ReaderSlot(index: $0, path: path) }
    }

    deinit {
        writer?.close()
    }

    /// The current time in milliseconds since the epoch.
    public static func nowMillis() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }

    // MARK: - Opening and closing

    /// Opens (creates, migrates) the store now instead of on first use.
    public func open() async throws {
        if opened.load(ordering: .acquiring) { return }
        try await onWriter { _ in }
    }

    /// Closes every connection. Blocks until work in progress is done; later calls throw `store_closed`.
    public func close() {
        state.withLock { $0.closed = true }
        writeQueue.sync {
            while flush() {}
            writer?.close()
            writer = nil
        }
        for slot in readers { slot.close() }
    }

    // MARK: - Writing

    /// Applies operations, in order, each in its own savepoint, in one transaction (shared with other concurrent
    /// calls: group commit). Returns one result per operation.
    ///
    /// Throws only when the transaction itself fails (the store cannot be opened, the lock cannot be taken
    /// within the busy timeout, the disk is full): then nothing of these operations was applied.
    public func apply(_ operations: [ProfileOperation]) async throws -> [OperationResult] {
        guard !operations.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            let (accepted, schedule) = state.withLock { state -> (Bool, Bool) in
                guard !state.closed else { return (false, false) }
                state.pending.append(Request(operations: operations, continuation: continuation))
                guard !state.flushScheduled else { return (true, false) }
                state.flushScheduled = true
                return (true, true)
            }
            if !accepted {
                continuation.resume(throwing: ProfileStoreError.closed)
            } else if schedule {
                writeQueue.async { self.flush() }
            }
        }
    }

    /// Erases a profile (by id or email) with a generated op id; see `ProfileOperation.Body.erase`.
    public func erase(_ key: ProfileKey) async throws -> OperationResult {
        let op = ProfileOperation(opID: "erase:\(UUID().uuidString)", timestampMillis: Self.nowMillis(), body: .erase(key))
        return try await apply([op])[0]
    }

    /// Compacts the file: WAL checkpoint with truncation, and with `vacuum` a full rebuild first.
    /// Returns whether the WAL could be emptied (readers of other processes can hold it for a while).
    @discardableResult
    public func compact(vacuum: Bool = false) async throws -> Bool {
        try await onWriter { try $0.compact(vacuum: vacuum) }
    }

    /// Inserts or replaces products of the catalog; returns the count.
    @discardableResult
    public func importCatalog(_ products: [CatalogProduct]) async throws -> Int {
        let now = Self.nowMillis()
        return try await onWriter { try $0.upsertProducts(products, now: now) }
    }

    /// Defines (or redefines) a segment from its JSON rule (checked first).
    public func defineSegment(name: String, rule: JSONValue) async throws {
        _ = try SegmentRule(json: rule)
        let now = Self.nowMillis()
        try await onWriter { try $0.defineSegment(name: name, rule: rule, now: now) }
    }

    /// Removes a segment; returns whether it existed.
    @discardableResult
    public func removeSegment(name: String) async throws -> Bool {
        try await onWriter { try $0.removeSegment(name: name) }
    }

    // MARK: - Frequency caps and suppressions

    /// Counts job `jobID` against the person's daily frequency cap on `channel` (their local `day`,
    /// `YYYY-MM-DD`), if the cap allows: returns whether the message may be sent. A job already counted is
    /// allowed again (retries and redeliveries do not count twice). `across`: the channels whose messages count
    /// against this cap together (empty: `channel` alone).
    public func reserveCap(jobID: String, profileID: String, channel: String, across: [String] = [], day: String,
                           limit: Int) async throws -> Bool {
        try await reserveCap(jobID: jobID, profileID: profileID, channel: channel, day: day, limits: [CapLimit(channels: across, limit: limit)])
    }

    /// Counts job `jobID` against several caps at once (say, push messages per day and messages of every channel per
    /// day): allowed only when every cap with a limit above 0 has room; the job then counts once, on `channel`.
    public func reserveCap(jobID: String, profileID: String, channel: String, day: String, limits: [CapLimit]) async throws -> Bool {
        let now = Self.nowMillis()
        return try await onWriter {
            try $0.reserveCap(jobID: jobID, profileID: profileID, channel: channel, limits: limits, day: day, now: now)
        }
    }

    /// Uncounts a job from the cap of `channel` (its message was refused for good).
    public func releaseCap(jobID: String, channel: String) async throws {
        try await onWriter { try $0.releaseCap(jobID: jobID, channel: channel) }
    }

    /// Deletes the cap rows created before `date` (a day's rows serve only that day); returns the count.
    public func pruneCaps(before date: Date) async throws -> Int {
        let millis = Int64(date.timeIntervalSince1970 * 1000)
        return try await onWriter { try $0.pruneCaps(before: millis) }
    }

    /// Adds an address to the suppression list of `channel` (its hash only), e.g. after a hard bounce.
    public func suppress(address: String, channel: AddressHasher.Channel, reason: String) async throws {
        let now = Self.nowMillis()
        try await onWriter { try $0.suppress(address: address, channel: channel, reason: reason, now: now) }
    }

    // MARK: - Reading

    /// The read model of a profile by id (following merges), with every defined segment evaluated.
    public func view(id: String) async throws -> ProfileView? {
        try await read { try $0.view(id: id) }
    }

    /// The read model of the profile with this email.
    public func view(email: String) async throws -> ProfileView? {
        try await read { try $0.view(email: email) }
    }

    /// Whether `address` is suppressed on `channel` (checks the hash; see `AddressHasher`).
    public func isSuppressed(address: String, channel: AddressHasher.Channel) async throws -> Bool {
        try await read { try $0.isSuppressed(address: address, channel: channel) }
    }

    /// Runs `body` with a reader of the pool, on that reader's queue.
    public func read<Value: Sendable>(_ body: @escaping @Sendable (ProfileReader) throws -> Value) async throws -> Value {
        try await open()
        let slot = readers[nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readers.count]
        return try await slot.run(body)
    }

    // MARK: - Group commit

    private struct Request: Sendable {
        var operations: [ProfileOperation]
        var continuation: CheckedContinuation<[OperationResult], any Error>
    }

    private struct State: Sendable {
        var pending: [Request] = []
        var flushScheduled = false
        var closed = false
    }

    private func openWriter() throws -> ProfileWriter {
        dispatchPrecondition(condition: .onQueue(writeQueue))
        if let writer { return writer }
        let made = try ProfileWriter(path: path)
        writer = made
        opened.store(true, ordering: .releasing)
        return made
    }

    func onWriter<Value: Sendable>(_ body: @escaping @Sendable (ProfileWriter) throws -> Value) async throws -> Value {
        if state.withLock({ $0.closed }) { throw ProfileStoreError.closed }
        return try await withCheckedThrowingContinuation { continuation in
            writeQueue.async {
                continuation.resume(with: Result { try body(self.openWriter()) })
            }
        }
    }

    /// Applies every pending request. Returns whether any were pending.
    @discardableResult
    private func flush() -> Bool {
        dispatchPrecondition(condition: .onQueue(writeQueue))
        let requests = state.withLock { state in
            defer {
                state.pending.removeAll(keepingCapacity: true)
                state.flushScheduled = false
            }
            return state.pending
        }
        guard !requests.isEmpty else { return false }
        let writer: ProfileWriter
        do {
            writer = try openWriter()
        } catch {
            logger.error("Cannot open the profile store", metadata: ["error": "\(error)"])
            for r in requests { r.continuation.resume(throwing: error) }
            return true
        }
        let now = Self.nowMillis()
        do {
            let (results, erased) = try writer.apply(requests.map(\.operations), now: now)
            if erased { compactAfterErase(writer) }
            for (request, result) in zip(requests, results) { request.continuation.resume(returning: result) }
        } catch {
            guard requests.count > 1 else {
                logger.error("Profile store commit failed", metadata: ["store.ops": "\(requests[0].operations.count)", "error": "\(error)"])
                requests[0].continuation.resume(throwing: error)
                return true
            }
            // One request's failure must not fail the others: apply each alone.
            logger.warning("Profile store group commit failed; applying one request at a time",
                           metadata: ["store.requests": "\(requests.count)", "error": "\(error)"])
            var erasedAny = false
            for request in requests {
                do {
                    let (results, erased) = try writer.apply([request.operations], now: now)
                    erasedAny = erasedAny || erased
                    request.continuation.resume(returning: results[0])
                } catch {
                    request.continuation.resume(throwing: error)
                }
            }
            if erasedAny { compactAfterErase(writer) }
        }
        return true
    }

    private func compactAfterErase(_ writer: ProfileWriter) {
        do {
            if try !writer.compact(vacuum: false) {
                logger.warning("WAL not fully checkpointed after an erase (readers hold it); it will be on the next checkpoint")
            }
        } catch {
            logger.error("Compaction after an erase failed", metadata: ["error": "\(error)"])
        }
    }
}

/// One read connection of the pool, confined to its own serial queue.
final class ReaderSlot: Sendable {
    private let queue: DispatchQueue
    private let path: String
    /// Confined to `queue`.
    private nonisolated(unsafe) var reader: ProfileReader?

    init(index: Int, path: String) {
        self.queue = DispatchQueue(label: "fleet.profiles.reader.\(index)")
        self.path = path
    }

    func run<Value: Sendable>(_ body: @escaping @Sendable (ProfileReader) throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    if self.reader == nil { self.reader = try ProfileReader(path: self.path) }
                    return try body(self.reader!)
                })
            }
        }
    }

    func close() {
        queue.sync {
            reader?.close()
            reader = nil
        }
    }
}
