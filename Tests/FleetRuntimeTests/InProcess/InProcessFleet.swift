import Clocks
import FleetCore
@testable import FleetRuntime
import FleetStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// A worker on the in-memory queue driver inside a `ServiceGroup`, with a `TestClock` for every timer (retries,
/// `not_before`, timeouts, the grace period) and a wall clock that moves with it: the runtime's behaviour tested
/// in process, without a broker, subprocesses or sleeps.
final class InProcessFleet: Sendable {
    let clock = TestClock<Duration>()
    let driver: MemoryQueueDriver
    let worker: WorkerService<MemoryQueueDriver>
    let directory: URL
    let group: ServiceGroup
    /// 2026-12-01T00:00:00Z plus the test clock's elapsed time.
    static let epoch = Date(timeIntervalSince1970: 1_796_083_200)

    init(handlers: [any JobHandler], concurrency: Int = 8, settings: KindSettings = KindSettings(),
         grace: Duration = .seconds(30), retention: Duration? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-inproc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let clock = self.clock
        let start = clock.now
        driver = MemoryQueueDriver(clock: AnyClock(clock))
        var configuration = WorkerConfiguration(
            concurrency: concurrency, prefetch: 64, defaultKindSettings: settings, shutdownGracePeriod: grace,
            ledgerPath: directory.appendingPathComponent("fleet.sqlite").path, ledgerRetention: retention,
            workerID: "test:1", clock: AnyClock(clock),
            now: { InProcessFleet.epoch.addingTimeInterval(start.duration(to: clock.now).seconds) })
        configuration.maxBodyBytes = 1 << 20
        var logger = Logger(label: "fleet.test")
        logger.logLevel = .warning
        worker = WorkerService(configuration: configuration, driver: driver, handlers: handlers, logger: logger)
        group = ServiceGroup(configuration: .init(
            services: [.init(service: driver), .init(service: worker)], gracefulShutdownSignals: [], cancellationSignals: [],
            logger: logger))
    }

    var now: Date { worker.configuration.now() }

    /// Runs `body` while the group runs; then shuts the group down gracefully and waits for it.
    func run(_ body: (InProcessFleet) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await self.group.run() }
            do {
                try await body(self)
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    func push(_ job: JSONValue) { driver.push(job) }

    /// Moves the test clock by `duration` and a millisecond more: a timer due exactly at the new time but armed
    /// just after the move would otherwise wait for the next move (`TestClock` sleeps until `deadline >= now`).
    func advance(by duration: Duration) async {
        await clock.advance(by: duration + .milliseconds(1))
    }

    /// Waits until an event of `jobID` matches.
    func waitFor(_ jobID: String, _ matches: @escaping @Sendable (MemoryQueueDriver.Event) -> Bool) async {
        await driver.waitFor { events in events.contains(where: matches) }
    }

    /// Waits until the job has `count` results.
    func results(of jobID: String, count: Int) async -> [ResultEnvelope] {
        await driver.waitFor { events in
            events.count { if case .result(let r) = $0 { r.jobID == jobID } else { false } } >= count
        }
        return driver.results.filter { $0.jobID == jobID }
    }

    /// Waits until a copy of the job was delayed for `attempt`; returns the delay.
    func delayed(_ jobID: String, attempt: Int) async -> Duration {
        @Sendable func delay(_ event: MemoryQueueDriver.Event) -> Duration? {
            guard case .delayed(let id, let a, let d) = event, id == jobID, a == attempt else { return nil }
            return d
        }
        await driver.waitFor { events in events.contains { delay($0) != nil } }
        return driver.events.compactMap(delay).first ?? .zero
    }
}

/// A handler whose work is a closure (parameters: none; the test reads `context`).
struct ScriptedHandler: JobHandler {
    typealias Parameters = NoParameters
    let kind: String
    let body: @Sendable (JobContext) async throws -> JobOutcome

    init(kind: String = "test", _ body: @escaping @Sendable (JobContext) async throws -> JobOutcome) {
        self.kind = kind
        self.body = body
    }

    func handle(_ parameters: NoParameters, context: JobContext) async throws -> JobOutcome { try await body(context) }
}

/// Counts calls, from any task.
final class Counter: Sendable {
    private let value = Mutex(0)
    @discardableResult func increment() -> Int { value.withLock { $0 += 1; return $0 } }
    var count: Int { value.withLock { $0 } }
}

/// A gate handlers wait on until the test opens it; the test can wait until `n` handlers are waiting.
final class Gate: Sendable {
    private struct State {
        var open = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var arrived = 0
        var watchers: [(Int, CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let (resume, due) = state.withLock { s -> (Bool, [CheckedContinuation<Void, Never>]) in
                s.arrived += 1
                let due = s.watchers.filter { $0.0 <= s.arrived }.map(\.1)
                s.watchers.removeAll { $0.0 <= s.arrived }
                if s.open { return (true, due) }
                s.waiting.append(c)
                return (false, due)
            }
            for w in due { w.resume() }
            if resume { c.resume() }
        }
    }

    /// Suspends until `n` callers have reached ``wait()``.
    func arrivals(_ n: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.arrived >= n { return true }
                s.watchers.append((n, c))
                return false
            }
            if now { c.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiting.removeAll() }
            return s.waiting
        }
        for c in waiting { c.resume() }
    }
}
