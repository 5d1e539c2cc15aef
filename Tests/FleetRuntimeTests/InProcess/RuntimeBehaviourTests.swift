import Clocks
import FleetCore
@testable import FleetRuntime
import FleetStore
import Foundation
import Synchronization
import Testing

/// The job life cycle, in process on the memory driver with a test clock (`InProcessFleet`): every timer is moved
/// by the test, every assertion waits on an event of the queue.
@Suite("Runtime on the memory driver (in process)")
struct RuntimeBehaviourTests {
    static func job(_ id: String, kind: String = "test", _ extra: JSONObject = [:]) -> JSONValue {
        var o: JSONObject = ["id": .string(id), "kind": .string(kind)]
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    /// Retries without jitter, so the delays are exact: 1 s, 2 s, 4 s ...
    static let exact = KindSettings(retry: RetryPolicy(maxAttempts: 4, baseDelay: .seconds(1), jitter: false))

    @Test("a retryable failure is retried with exponential backoff, then succeeds on the attempt after")
    func retryWithBackoff() async throws {
        let calls = Counter()
        let handler = ScriptedHandler { context in
            calls.increment()
            if context.attempt < 3 { throw JobError.retryable("flaky", "attempt \(context.attempt) failed") }
            return .succeeded(output: ["attempt": .int(Int64(context.attempt))])
        }
        try await InProcessFleet(handlers: [handler], settings: Self.exact).run { fleet in
            fleet.push(Self.job("r1"))
            #expect(await fleet.delayed("r1", attempt: 2) == .seconds(1))
            await fleet.advance(by: .seconds(1))
            #expect(await fleet.delayed("r1", attempt: 3) == .seconds(2))
            // Not before its delay: a second is not enough.
            await fleet.advance(by: .seconds(1))
            #expect(calls.count == 2)
            await fleet.advance(by: .seconds(1))
            let final = await fleet.driver.finalResult(of: "r1")
            #expect(final.status == .succeeded)
            #expect(final.attempt == 3)
            let all = await fleet.results(of: "r1", count: 3)
            #expect(all.map(\.status) == [.failed, .failed, .succeeded])
            #expect(all[0].error?.code == "flaky")
            #expect(all[0].retryAt == InProcessFleet.epoch.addingTimeInterval(1))
            #expect(calls.count == 3)
        }
    }

    @Test("a delay the error asks for (Retry-After) is honoured when longer than the backoff")
    func retryAfter() async throws {
        let handler = ScriptedHandler { context in
            if context.attempt == 1 { throw JobError.retryable("rate_limited", "429", after: .seconds(30)) }
            return .succeeded
        }
        try await InProcessFleet(handlers: [handler], settings: Self.exact).run { fleet in
            fleet.push(Self.job("ra"))
            #expect(await fleet.delayed("ra", attempt: 2) == .seconds(30))
            await fleet.advance(by: .seconds(30))
            #expect(await fleet.driver.finalResult(of: "ra").status == .succeeded)
        }
    }

    @Test("deferred runs do not count toward the retry limit: a job deferred three times still gets its retries")
    func deferralsAreNotFailures() async throws {
        let handler = ScriptedHandler { context in
            if context.attempt <= 3 { return .deferred(until: context.now.addingTimeInterval(10), reason: "later") }
            if context.attempt <= 5 { throw JobError.retryable("flaky", "attempt \(context.attempt) failed") }
            return .succeeded
        }
        let settings = KindSettings(retry: RetryPolicy(maxAttempts: 3, baseDelay: .seconds(1), jitter: false))
        try await InProcessFleet(handlers: [handler], settings: settings).run { fleet in
            fleet.push(Self.job("df"))
            for attempt in 2...4 {
                #expect(await fleet.delayed("df", attempt: attempt) == .seconds(10))
                await fleet.advance(by: .seconds(10))
            }
            // Attempt 4 is the first failure: retried after 1 s, attempt 5 (the second) after 2 s.
            #expect(await fleet.delayed("df", attempt: 5) == .seconds(1))
            await fleet.advance(by: .seconds(1))
            #expect(await fleet.delayed("df", attempt: 6) == .seconds(2))
            await fleet.advance(by: .seconds(2))
            let final = await fleet.driver.finalResult(of: "df")
            #expect(final.status == .succeeded)
            #expect(final.attempt == 6)
            let all = await fleet.results(of: "df", count: 6)
            #expect(all.map(\.status) == [.deferred, .deferred, .deferred, .failed, .failed, .succeeded])
        }
    }

    @Test("retries exhausted: dead with retries_exhausted naming the last error, dead-lettered, recorded")
    func retriesExhausted() async throws {
        let handler = ScriptedHandler { _ in throw JobError.retryable("down", "the peer is down") }
        let settings = KindSettings(retry: RetryPolicy(maxAttempts: 2, baseDelay: .seconds(1), jitter: false))
        try await InProcessFleet(handlers: [handler], settings: settings).run { fleet in
            fleet.push(Self.job("x1"))
            _ = await fleet.delayed("x1", attempt: 2)
            await fleet.advance(by: .seconds(1))
            let final = await fleet.driver.finalResult(of: "x1")
            #expect(final.status == .dead)
            #expect(final.error?.code == "retries_exhausted")
            #expect(final.error?.message.contains("down") == true)
            #expect(fleet.driver.events.contains(.deadLettered(jobID: "x1", code: "retries_exhausted")))
            let ledger = try JobLedger(path: fleet.worker.configuration.ledgerPath)
            #expect(try await ledger.lookup("x1")?.status == "dead")
            ledger.close()
        }
    }

    @Test("a permanent failure is dead at once, with the handler's code; other errors become JobErrors in one place")
    func permanentFailure() async throws {
        struct Broken: Error {}
        let handler = ScriptedHandler { context in
            switch context.jobID {
            case "p1": throw JobError.permanent("bad_input", "no such thing")
            case "p2": throw SQLiteError(code: 5, message: "database is locked")
            default: throw Broken()
            }
        }
        let settings = KindSettings(retry: RetryPolicy(maxAttempts: 1))
        try await InProcessFleet(handlers: [handler], settings: settings).run { fleet in
            for id in ["p1", "p2", "p3"] { fleet.push(Self.job(id)) }
            let p1 = await fleet.driver.finalResult(of: "p1")
            #expect(p1.status == .dead)
            #expect(p1.error?.code == "bad_input")
            #expect(p1.attempt == 1)
            // A store error is store_unavailable (retryable: with one attempt allowed, retries are exhausted).
            let p2 = await fleet.driver.finalResult(of: "p2")
            #expect(p2.error?.message.contains("store_unavailable") == true)
            let p3 = await fleet.driver.finalResult(of: "p3")
            #expect(p3.error?.message.contains("handler_error") == true)
            #expect(p3.error?.message.contains("Broken") == true)
        }
    }

    @Test("a job that runs past its timeout is cancelled by the watchdog and retried as timeout")
    func timeoutCancels() async throws {
        let started = Gate()
        started.open()  // only counts arrivals
        let sawCancellation = Counter()
        let clock = Mutex<TestClock<Duration>?>(nil)
        let handler = ScriptedHandler { context in
            if context.attempt > 1 { return .succeeded }
            await started.wait()
            do {
                try await clock.withLock { $0! }.sleep(for: .seconds(3600))
            } catch is CancellationError {
                sawCancellation.increment()
                throw CancellationError()
            }
            return .succeeded
        }
        let settings = KindSettings(retry: RetryPolicy(maxAttempts: 3, baseDelay: .seconds(1), jitter: false), timeout: .seconds(10))
        let fleet = try InProcessFleet(handlers: [handler], settings: settings)
        clock.withLock { $0 = fleet.clock }
        try await fleet.run { fleet in
            fleet.push(Self.job("t1"))
            await started.arrivals(1)
            await fleet.advance(by: .seconds(9))
            #expect(fleet.driver.results.isEmpty, "cancelled before its timeout")
            await fleet.advance(by: .seconds(2))
            let first = await fleet.results(of: "t1", count: 1)
            #expect(first[0].status == .failed)
            #expect(first[0].error?.code == "timeout")
            #expect(sawCancellation.count == 1, "the handler's task was cancelled")
            #expect(fleet.worker.isReady)
            await fleet.advance(by: .seconds(1))
            #expect(await fleet.driver.finalResult(of: "t1").status == .succeeded)
        }
    }

    @Test("a job past its deadline is dead with deadline_exceeded and does not run")
    func deadline() async throws {
        let calls = Counter()
        let handler = ScriptedHandler { _ in calls.increment(); return .succeeded }
        try await InProcessFleet(handlers: [handler]).run { fleet in
            let past = Timestamp.format(fleet.now.addingTimeInterval(-1))
            fleet.push(Self.job("d1", ["deadline": .string(past)]))
            let final = await fleet.driver.finalResult(of: "d1")
            #expect(final.status == .dead)
            #expect(final.error?.code == "deadline_exceeded")
            #expect(calls.count == 0)
        }
    }

    @Test("not_before holds the job without an attempt or a result, then it runs as attempt 1")
    func notBefore() async throws {
        let calls = Counter()
        let handler = ScriptedHandler { context in
            calls.increment()
            return .succeeded(output: ["attempt": .int(Int64(context.attempt))])
        }
        try await InProcessFleet(handlers: [handler]).run { fleet in
            let later = Timestamp.format(fleet.now.addingTimeInterval(30))
            fleet.push(Self.job("nb", ["not_before": .string(later)]))
            #expect(await fleet.delayed("nb", attempt: 1) == .seconds(30))
            #expect(fleet.driver.results.isEmpty)
            #expect(calls.count == 0)
            await fleet.advance(by: .seconds(30))
            let final = await fleet.driver.finalResult(of: "nb")
            #expect(final.attempt == 1)
            #expect(final.output["attempt"] == 1)
            #expect(calls.count == 1)
        }
    }

    @Test("a second delivery of a finished job is answered from the ledger: the same result, the handler not run")
    func idempotentRedelivery() async throws {
        let calls = Counter()
        let handler = ScriptedHandler { _ in .succeeded(output: ["run": .int(Int64(calls.increment()))]) }
        try await InProcessFleet(handlers: [handler]).run { fleet in
            fleet.push(Self.job("i1"))
            let first = await fleet.driver.finalResult(of: "i1")
            fleet.push(Self.job("i1"))
            let both = await fleet.results(of: "i1", count: 2)
            #expect(both[1] == first, "the stored result, byte for byte")
            #expect(calls.count == 1)
        }
    }

    @Test("bad parameters are dead with invalid_parameters naming the field, before the handler runs; not recorded")
    func invalidParameters() async throws {
        try await InProcessFleet(handlers: [NoopHandler()]).run { fleet in
            fleet.push(Self.job("bp", kind: "noop", ["data": ["noop": ["fail": "sometimes"]]]))
            let final = await fleet.driver.finalResult(of: "bp")
            #expect(final.status == .dead)
            #expect(final.error?.code == "invalid_parameters")
            #expect(final.error?.message.contains("data.noop.fail") == true)
            let ledger = try JobLedger(path: fleet.worker.configuration.ledgerPath)
            #expect(try await ledger.lookup("bp") == nil, "a corrected job may reuse the id")
            ledger.close()
            // The corrected job with the same id runs.
            fleet.push(Self.job("bp", kind: "noop", ["data": ["noop": ["fail": "permanent"]]]))
            await fleet.waitFor("bp") { if case .result(let r) = $0 { r.jobID == "bp" && r.error?.code == "noop_failure" } else { false } }
        }
    }

    @Test("SIGTERM drains: jobs in flight finish, jobs not started go back to the queue, the worker ends")
    func gracefulDrain() async throws {
        let gate = Gate()
        let handler = ScriptedHandler { _ in
            await gate.wait()
            return .succeeded
        }
        let fleet = try InProcessFleet(handlers: [handler], concurrency: 2)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await fleet.group.run() }
            for i in 0..<5 { fleet.push(Self.job("g\(i)")) }
            await gate.arrivals(2)
            await fleet.group.triggerGracefulShutdown()
            // The three waiting for a slot are given back at once, not started; the two in flight may finish.
            await fleet.driver.waitFor { events in events.count { if case .released = $0 { true } else { false } } == 3 }
            #expect(fleet.driver.results.isEmpty)
            gate.open()
            try await tasks.waitForAll()
        }
        let finished = fleet.driver.results.filter { $0.status == .succeeded }.map(\.jobID)
        #expect(finished.count == 2, "\(fleet.driver.events)")
        #expect(fleet.driver.depth.unsettled == 0)
        #expect(fleet.driver.depth.ready == 3, "the three not started are back in the queue")
    }

    @Test("jobs still running when the grace period ends are cancelled and go back to the queue")
    func graceEnds() async throws {
        let started = Gate()
        started.open()  // only counts arrivals
        let clock = Mutex<TestClock<Duration>?>(nil)
        let handler = ScriptedHandler { _ in
            await started.wait()
            try await clock.withLock { $0! }.sleep(for: .seconds(3600))
            return .succeeded
        }
        let fleet = try InProcessFleet(handlers: [handler], grace: .seconds(5))
        clock.withLock { $0 = fleet.clock }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await fleet.group.run() }
            fleet.push(Self.job("slow"))
            await started.arrivals(1)
            await fleet.group.triggerGracefulShutdown()
            await fleet.driver.waitFor { $0.contains(.stoppedDelivering) }
            await fleet.advance(by: .seconds(4))
            #expect(fleet.driver.depth.unsettled == 1, "still within the grace period")
            await fleet.advance(by: .seconds(1))
            try await tasks.waitForAll()
        }
        #expect(fleet.driver.results.isEmpty)
        #expect(fleet.driver.depth.ready == 1, "the cancelled job is back in the queue")
    }
}
