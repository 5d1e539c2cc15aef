import Foundation

/// Reads a file handle line by line (bytes, without the newline) on a dedicated thread, so that a slow
/// pipe on stdin never blocks a thread of the cooperative pool. At most a few 64 KiB chunks are read
/// ahead of the consumer.
struct LineReader: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let handle: FileHandle

    struct AsyncIterator: AsyncIteratorProtocol {
        var batches: AsyncThrowingStream<[[UInt8]], any Error>.AsyncIterator
        let credits: DispatchSemaphore
        var current: [[UInt8]] = []
        var index = 0

        mutating func next() async throws -> [UInt8]? {
            while index >= current.count {
                guard let batch = try await batches.next() else { return nil }
                credits.signal()
                current = batch
                index = 0
            }
            defer { index += 1 }
            return current[index]
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        let (stream, continuation) = AsyncThrowingStream<[[UInt8]], any Error>.makeStream()
        // Created at 0 and then credited: libdispatch traps when a semaphore is freed below its initial value.
        let credits = DispatchSemaphore(value: 0)
        for _ in 0..<4 { credits.signal() }
        let handle = self.handle
        let thread = Thread {
            var pending: [UInt8] = []
            while true {
                credits.wait()
                let chunk: Data
                do {
                    chunk = try handle.read(upToCount: 1 << 16) ?? Data()
                } catch {
                    continuation.finish(throwing: error)
                    return
                }
                if chunk.isEmpty {
                    if !pending.isEmpty { continuation.yield([pending]) }
                    continuation.finish()
                    return
                }
                pending.append(contentsOf: chunk)
                var lines: [[UInt8]] = []
                var start = 0
                while let newline = pending[start...].firstIndex(of: 0x0A) {
                    lines.append(Array(pending[start..<newline]))
                    start = newline + 1
                }
                pending.removeFirst(start)
                if lines.isEmpty {
                    credits.signal()  // nothing handed over: the credit stays with the reader
                } else {
                    continuation.yield(lines)
                }
            }
        }
        thread.name = "fleet.enqueue.reader"
        thread.start()
        return AsyncIterator(batches: stream.makeAsyncIterator(), credits: credits)
    }
}
