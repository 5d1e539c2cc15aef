import Clocks
import FleetCore
import FleetRuntime
import FleetTestSupport
import Foundation
import Logging
import ProfileStore
@testable import PushWorker
import ServiceLifecycle

/// A push worker in process: the memory queue driver and the runtime inside a `ServiceGroup`, a real SQLite profile
/// store, the repository's templates, and the APNs/FCM emulator over real HTTP/2 + TLS. The runtime's timers (retry
/// delays, deferrals) run on a `TestClock` that the test advances; the wall clock the handler sees is `start` plus
/// the test clock's elapsed time (quiet hours are tested at a chosen hour).
final class PushFleet: Sendable {
    let clock = TestClock<Duration>()
    let driver: MemoryQueueDriver
    let worker: WorkerService<MemoryQueueDriver>
    let handler: PushHandler
    let store: ProfileStore
    let directory: URL
    let group: ServiceGroup
    let emulator: PushEmulator

    /// `environment`: extra `FLEET_PUSH_*` settings.
    /// `realTime`: the runtime's timers on the continuous clock instead (retries after `retry`'s real delays).
    init(emulator: PushEmulator, start: Date = Date(), environment: [String: String] = [:], concurrency: Int = 64,
         retry: RetryPolicy = RetryPolicy(maxAttempts: 5, baseDelay: .seconds(1), jitter: false), realTime: Bool = false) throws {
        self.emulator = emulator
        directory = try TestEnvironment.temporaryDirectory()
        var env = try emulator.environment(directory: directory)
        for (k, v) in environment { env[k] = v }
        store = ProfileStore(path: directory.appendingPathComponent("fleet.sqlite").path)
        handler = try PushHandler(store: store, settings: try PushSettings.fromEnvironment(env))
        let clock = self.clock
        let origin = clock.now
        let timers: AnyClock<Duration> = realTime ? AnyClock(ContinuousClock()) : AnyClock(clock)
        let wall: @Sendable () -> Date
        if realTime {
            wall = { Date() }
        } else {
            wall = { start.addingTimeInterval(origin.duration(to: clock.now).seconds) }
        }
        driver = MemoryQueueDriver(clock: timers)
        var configuration = WorkerConfiguration(
            concurrency: concurrency, prefetch: 256, defaultKindSettings: KindSettings(retry: retry),
            ledgerPath: directory.appendingPathComponent("fleet.sqlite").path, workerID: "push-test:1", clock: timers, now: wall)
        configuration.maxBodyBytes = 1 << 20
        var logger = Logger(label: "fleet.test")
        logger.logLevel = .warning
        worker = WorkerService(configuration: configuration, driver: driver, handlers: [handler], logger: logger)
        group = ServiceGroup(configuration: .init(
            services: [.init(service: driver), .init(service: worker)], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger))
    }

    /// Runs `body` while the group runs; then shuts it down, closes the HTTP client and the store.
    func run(_ body: (PushFleet) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await self.group.run() }
            do {
                try await body(self)
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                await handler.shutdown()
                store.close()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await handler.shutdown()
        store.close()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A person with traits, devices (token, platform) and push consents (topic: opted in).
    func person(_ id: String, traits: JSONObject = [:], devices: [(String, String)] = [], consents: [String: Bool] = [:]) async throws {
        var ops = [ProfileOperation(opID: "i-\(id)", timestampMillis: 1_000, body: .identify(profileID: id, traits: traits, identities: []))]
        for (n, (token, platform)) in devices.enumerated() {
            ops.append(ProfileOperation(opID: "d-\(id)-\(n)", timestampMillis: 1_000,
                                        body: .device(profileID: id, token: token, platform: platform, app: "shop", registered: true)))
        }
        for (topic, opted) in consents {
            ops.append(ProfileOperation(opID: "c-\(id)-\(topic)", timestampMillis: 1_000,
                                        body: .consent(profileID: id, channel: "push", topic: topic, optedIn: opted, source: "test")))
        }
        _ = try await store.apply(ops)
    }

    func push(_ job: JSONObject) { driver.push(.object(job)) }

    /// A push job of the `offer` template for a profile.
    static func job(_ id: String, profile: String, template: String = "offer", campaign: JSONValue = "spring", data: JSONObject = [:]) -> JSONObject {
        ["id": .string(id), "kind": "push", "profile_id": .string(profile), "template": .string(template), "campaign": campaign, "data": .object(data)]
    }

    func final(_ id: String) async -> ResultEnvelope { await driver.finalResult(of: id) }

    /// Waits until the job has a result with `status`.
    func result(_ id: String, _ status: JobStatus) async -> ResultEnvelope {
        await driver.waitFor { events in events.contains { if case .result(let r) = $0 { r.jobID == id && r.status == status } else { false } } }
        return driver.results.last { $0.jobID == id && $0.status == status }!
    }

    /// Moves the test clock (and so the retry timers and the handler's wall clock).
    func advance(by duration: Duration) async {
        await clock.advance(by: duration + .milliseconds(1))
    }

    /// The accepted pushes, after the emulator flushed its log.
    func accepted() async throws -> [JSONValue] {
        let http = try PushHTTP(caFile: emulator.caFile)
        _ = try await http.post(emulator.url + "/_emulator/flush", headers: [], body: [])
        await http.shutdown()
        return emulator.accepted()
    }

    /// A control request to the emulator (`/_emulator/faults`, `/_emulator/unregister`, ...).
    func control(_ path: String, _ body: JSONValue) async throws -> JSONValue? {
        let http = try PushHTTP(caFile: emulator.caFile)
        let r = try await http.post(emulator.url + path, headers: [("content-type", "application/json")], body: body.serialized())
        await http.shutdown()
        return try? JSONValue(parsing: r.body)
    }
}
