import Clocks
import Synchronization

/// Enforces per-job timeouts for a whole worker with one sweeping task, instead of a timer per job.
///
/// A job's handler runs in a child task of ``withDeadline(_:_:)`` (started at once on the caller's thread, so
/// a handler that never suspends costs no thread hop). The sweep (``run()``, ten times a second on the worker's
/// clock) marks entries past their deadline; the job then cancels its child task through its own task group and
/// waits for it to end. No task reference is kept outside its task (Apple documents storing
/// `UnsafeCurrentTask` as undefined behaviour).
///
/// Entries live in reused slots (an array and a free list) rather than a dictionary: registering, finishing and
/// removing a job are a lock each and no hashing, and a handler that did not suspend makes no continuation
/// (measured with `fleet bench`: the watchdog is on every job).
final class JobWatchdog: Sendable {
    private struct Entry {
        var deadline: AnyClock<Duration>.Instant
        /// The handler's child task ended.
        var finished = false
        var expired = false
        /// The job waiting for either.
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private struct State {
        /// Entries by slot; nil slots are free and listed in `free`.
        var slots: [Entry?] = []
        var free: [Int] = []
        var count = 0

        mutating func add(_ entry: Entry) -> Int {
            count += 1
            if let slot = free.popLast() {
                slots[slot] = entry
                return slot
            }
            slots.append(entry)
            return slots.count - 1
        }

        mutating func remove(_ slot: Int) {
            guard slots[slot] != nil else { return }
            slots[slot] = nil
            free.append(slot)
            count -= 1
        }
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
        let slot = state.withLock { $0.add(Entry(deadline: deadline)) }
        return await withTaskGroup(of: T.self) { group in
            group.addImmediateTask {
                let result = await body()
                self.finished(slot)
                return result
            }
            let expired = await waitForEnd(slot)
            if expired { group.cancelAll() }
            let result = await group.next()
            state.withLock { $0.remove(slot) }
            return expired ? (nil, true) : (result, false)
        }
    }

    /// Suspends until the entry's child ended (false) or its deadline passed (true); returns at once when
    /// either already happened.
    private func waitForEnd(_ slot: Int) async -> Bool {
        // A handler that did not suspend has ended already: no continuation to make.
        let settled: Bool? = state.withLock { s in
            guard let entry = s.slots[slot] else { return false }
            if entry.finished { return false }
            return entry.expired ? true : nil
        }
        if let settled { return settled }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let now: Bool? = state.withLock { s in
                guard let entry = s.slots[slot] else { return false }
                if entry.finished { return false }
                if entry.expired { return true }
                s.slots[slot]!.waiter = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    private func finished(_ slot: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            guard var entry = s.slots[slot] else { return nil }
            entry.finished = true
            let waiter = entry.expired ? nil : entry.waiter
            entry.waiter = nil
            s.slots[slot] = entry
            return waiter
        }
        waiter?.resume(returning: false)
    }

    /// The number of jobs under watch (for tests).
    var watching: Int { state.withLock { $0.count } }

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
                for slot in s.slots.indices {
                    guard var entry = s.slots[slot], !entry.finished, !entry.expired, entry.deadline <= now else { continue }
                    entry.expired = true
                    if let waiter = entry.waiter { due.append(waiter) }
                    entry.waiter = nil
                    s.slots[slot] = entry
                }
                return due
            }
            for waiter in waiters { waiter.resume(returning: true) }
        }
    }
}
