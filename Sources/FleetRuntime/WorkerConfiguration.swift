import Clocks
import FleetCore
import Foundation

/// How a worker process runs.
public struct WorkerConfiguration: Sendable {
    /// Jobs run at once in this process.
    public var concurrency: Int
    /// Unsettled deliveries the queue may hand out ahead, per kind.
    public var prefetch: Int
    /// Settings for kinds without their own entry in `kindSettings`.
    public var defaultKindSettings: KindSettings
    public var kindSettings: [String: KindSettings]
    /// Larger job bodies are dead-lettered with `body_too_large`.
    public var maxBodyBytes: Int
    /// On SIGTERM/SIGINT, in-flight jobs get this long to finish; then they are cancelled (and the queue
    /// delivers them again).
    public var shutdownGracePeriod: Duration
    /// The SQLite file of the idempotency ledger and effects journal (shared by the processes of a host).
    public var ledgerPath: String
    /// How long finished jobs stay in the ledger (and effect records in the journal); pruned every
    /// ``retentionInterval``. Nil: never pruned.
    public var ledgerRetention: Duration?
    public var retentionInterval: Duration
    /// `<hostname>:<pid>`, in results and dead-letter headers.
    public var workerID: String
    /// The monotonic clock of timeouts, the grace period and retention (a `TestClock` in tests).
    public var clock: AnyClock<Duration>
    /// The wall clock of results, deadlines and `not_before` (moved with ``clock`` in tests).
    public var now: @Sendable () -> Date

    public init(concurrency: Int = 64, prefetch: Int = 256,
                defaultKindSettings: KindSettings = KindSettings(), kindSettings: [String: KindSettings] = [:],
                maxBodyBytes: Int = 1 << 20, shutdownGracePeriod: Duration = .seconds(30),
                ledgerPath: String, ledgerRetention: Duration? = .seconds(7 * 86_400), retentionInterval: Duration = .seconds(3600),
                workerID: String = WorkerConfiguration.defaultWorkerID,
                clock: AnyClock<Duration> = AnyClock(ContinuousClock()), now: @escaping @Sendable () -> Date = Date.init) {
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.defaultKindSettings = defaultKindSettings
        self.kindSettings = kindSettings
        self.maxBodyBytes = maxBodyBytes
        self.shutdownGracePeriod = shutdownGracePeriod
        self.ledgerPath = ledgerPath
        self.ledgerRetention = ledgerRetention
        self.retentionInterval = retentionInterval
        self.workerID = workerID
        self.clock = clock
        self.now = now
    }

    public func settings(forKind kind: String) -> KindSettings { kindSettings[kind] ?? defaultKindSettings }

    /// `<hostname>:<pid>` of this process.
    public static var defaultWorkerID: String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    }
}
