import Foundation

/// Reads a file handle line by line (bytes, without the newline), in 64 KiB chunks, off the
/// cooperative pool's hot path only in the sense that each read is a short, bounded system call.
struct LineReader: AsyncSequence {
    typealias Element = [UInt8]
    let handle: FileHandle

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle
        var buffer: [UInt8] = []
        var start = 0
        var eof = false

        mutating func next() async throws -> [UInt8]? {
            while true {
                if let newline = buffer[start...].firstIndex(of: 0x0A) {
                    let line = Array(buffer[start..<newline])
                    start = newline + 1
                    return line
                }
                if eof {
                    guard start < buffer.count else { return nil }
                    let line = Array(buffer[start...])
                    start = buffer.count
                    return line
                }
                if start > 0 {
                    buffer.removeFirst(start)
                    start = 0
                }
                let chunk = try handle.read(upToCount: 1 << 16) ?? Data()
                if chunk.isEmpty { eof = true } else { buffer.append(contentsOf: chunk) }
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }
}
