import Synchronization

/// A counting semaphore for async code: at most `limit` holders at once, waiters resumed in order.
/// Bounds how many handlers run at once; the rest of a job's life (ledger, confirms, ack) is bounded by
/// the prefetch instead, so slow confirms do not idle the handler slots.
final class ConcurrencyLimiter: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Bool, Never>] = []
        var head = 0
        var closed = false
    }

    private let state: Mutex<State>

    init(limit: Int) {
        state = Mutex(State(available: max(1, limit)))
    }

    /// Runs `body` holding a slot; nil (without running it) once the limiter is closed.
    func withSlot<T: Sendable>(_ body: () async -> T) async -> T? {
        guard await acquire() else { return nil }
        let result = await body()
        release()
        return result
    }

    /// Closes the limiter: callers waiting for a slot, and later ones, get none (shutdown: jobs not started go
    /// back to the queue at once instead of waiting for the running ones to end).
    func close() {
        let waiting = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.closed = true
            defer { s.waiters.removeAll(); s.head = 0 }
            return Array(s.waiters[s.head...])
        }
        for w in waiting { w.resume(returning: false) }
    }

    private func acquire() async -> Bool {
        let acquired = state.withLock { s -> Bool? in
            if s.closed { return false }
            if s.available > 0 {
                s.available -= 1
                return true
            }
            return nil
        }
        if let acquired { return acquired }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let immediate = state.withLock { s -> Bool? in
                if s.closed { return false }
                if s.available > 0 {
                    s.available -= 1
                    return true
                }
                s.waiters.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    private func release() {
        let next = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            if s.head < s.waiters.count {
                let waiter = s.waiters[s.head]
                s.head += 1
                if s.head > 1024 && s.head * 2 > s.waiters.count {
                    s.waiters.removeFirst(s.head)
                    s.head = 0
                }
                return waiter  // the slot passes straight to the waiter
            }
            s.available += 1
            return nil
        }
        next?.resume(returning: true)
    }
}
