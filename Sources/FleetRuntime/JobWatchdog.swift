import Clocks
import Synchronization

/// Enforces per-job timeouts for a whole worker with one sweeping task, instead of a timer per job.
///
/// A job's handler runs in a child task of ``withDeadline(_:_:)`` (started at once on the caller's thread, so
/// a handler that never suspends costs no thread hop). The sweep (``run()``, ten times a second on the worker's
/// clock) marks entries past their deadline; the job then cancels its child task through its own task group and
/// waits for it to end. No task reference is kept outside its task (Apple documents storing
/// `UnsafeCurrentTask` as undefined behaviour).
final class JobWatchdog: Sendable {
    private struct Entry {
        let deadline: AnyClock<Duration>.Instant
        /// The handler's child task ended.
        var finished = false
        var expired = false
        /// The job waiting for either.
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private struct State {
        var next: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
    }

    private let state = Mutex(State())
    private let interval: Duration
    private let clock: AnyClock<Duration>

    init(clock: AnyClock<Duration>, interval: Duration = .milliseconds(100)) {
        self.clock = clock
        self.interval = interval
    }

    /// Runs `body` with a deadline: its result, or nil with `timedOut` when the deadline passed first (the body
    /// was then cancelled, and has ended).
    func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async -> T) async -> (T?, timedOut: Bool) {
        let deadline = clock.now.advanced(by: timeout)
        let id = state.withLock { s -> UInt64 in
            s.next += 1
            s.entries[s.next] = Entry(deadline: deadline)
            return s.next
        }
        return await withTaskGroup(of: T.self) { group in
            group.addImmediateTask {
                let result = await body()
                self.finished(id)
                return result
            }
            let expired = await waitForEnd(id)
            if expired { group.cancelAll() }
            let result = await group.next()
            state.withLock { _ = $0.entries.removeValue(forKey: id) }
            return expired ? (nil, true) : (result, false)
        }
    }

    /// Suspends until the entry's child ended (false) or its deadline passed (true); returns at once when
    /// either already happened.
    private func waitForEnd(_ id: UInt64) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let now: Bool? = state.withLock { s in
                guard let entry = s.entries[id] else { return false }
                if entry.finished { return false }
                if entry.expired { return true }
                s.entries[id]?.waiter = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    private func finished(_ id: UInt64) {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            s.entries[id]?.finished = true
            defer { s.entries[id]?.waiter = nil }
            return s.entries[id]?.expired == true ? nil : s.entries[id]?.waiter
        }
        waiter?.resume(returning: false)
    }

    /// The number of jobs under watch (for tests).
    var watching: Int { state.withLock { $0.entries.count } }

    /// Sweeps until cancelled, on a fixed grid of ticks (each `interval` after the last, not after the sweep's
    /// own end), so that a test clock moved while a sweep runs is still seen by the next one.
    func run() async {
        var tick = clock.now.advanced(by: interval)
        while !Task.isCancelled {
            if clock.now < tick {
                do { try await clock.sleep(until: tick) } catch { return }
            }
            let now = clock.now
            // Far behind (the process was stopped, or a test moved the clock by hours): skip ahead on the grid.
            let behind = tick.duration(to: now)
            let steps = behind / interval
            tick = tick.advanced(by: interval * (Int(steps) + 1))
            let waiters = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
                var due: [CheckedContinuation<Bool, Never>] = []
                for (id, entry) in s.entries where !entry.finished && !entry.expired && entry.deadline <= now {
                    s.entries[id]?.expired = true
                    if let waiter = entry.waiter { due.append(waiter) }
                    s.entries[id]?.waiter = nil
                }
                return due
            }
            for waiter in waiters { waiter.resume(returning: true) }
        }
    }
}
