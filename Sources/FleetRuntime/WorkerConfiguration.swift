import FleetCore
import Foundation

/// How a worker process runs.
public struct WorkerConfiguration: Sendable {
    /// The broker topology (names, queue type); declared at start.
    public var topology: FleetTopology
    /// Jobs run at once in this process.
    public var concurrency: Int
    /// Unacknowledged deliveries the broker may send ahead, per kind queue.
    public var prefetch: Int
    /// Settings for kinds without their own entry in `kindSettings`.
    public var defaultKindSettings: KindSettings
    public var kindSettings: [String: KindSettings]
    /// Larger job bodies are dead-lettered with `body_too_large`.
    public var maxBodyBytes: Int
    /// On SIGTERM/SIGINT, in-flight jobs get this long to finish; then they are cancelled (and the broker
    /// redelivers them).
    public var shutdownGracePeriod: Duration
    /// The SQLite file of the idempotency ledger (shared by the processes of a host).
    public var ledgerPath: String
    /// `<hostname>:<pid>`, in results and dead-letter headers.
    public var workerID: String

    public init(topology: FleetTopology = FleetTopology(), concurrency: Int = 64, prefetch: Int = 256,
                defaultKindSettings: KindSettings = KindSettings(), kindSettings: [String: KindSettings] = [:],
                maxBodyBytes: Int = 1 << 20, shutdownGracePeriod: Duration = .seconds(30),
                ledgerPath: String, workerID: String = WorkerConfiguration.defaultWorkerID) {
        self.topology = topology
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.defaultKindSettings = defaultKindSettings
        self.kindSettings = kindSettings
        self.maxBodyBytes = maxBodyBytes
        self.shutdownGracePeriod = shutdownGracePeriod
        self.ledgerPath = ledgerPath
        self.workerID = workerID
    }

    public func settings(forKind kind: String) -> KindSettings { kindSettings[kind] ?? defaultKindSettings }

    /// `<hostname>:<pid>` of this process.
    public static var defaultWorkerID: String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    }
}
