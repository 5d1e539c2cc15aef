/// The UTF-8 output of one render: bytes appended into one growing allocation, turned into an array or a
/// string once at the end.
///
/// An append checks the capacity and copies; there is no copy-on-write check (the buffer is not copyable,
/// so it has one owner) and no generic sequence machinery. The memory is allocated and freed here only;
/// every write stays below `count + reserved`, which `reserve(_:)` guarantees.
struct OutputBuffer: ~Copyable {
    /// The memory, allocated on the first write when the capacity asked for was 0.
    private var base: UnsafeMutablePointer<UInt8>?
    private var capacity: Int
    /// The number of bytes written.
    private(set) var count = 0
    /// Whether `base` was allocated here; if not, it is the memory given to `init(writingInto:)`.
    private var ownsMemory: Bool

    init(capacity: Int) {
        self.capacity = capacity
        base = capacity > 0 ? .allocate(capacity: capacity) : nil
        ownsMemory = true
    }

    /// Writes into `memory` (which must outlive the buffer) until it is full, then into memory of its own.
    init(writingInto memory: UnsafeMutableBufferPointer<UInt8>) {
        base = memory.baseAddress
        capacity = memory.count
        ownsMemory = false
    }

    deinit {
        if ownsMemory { base?.deallocate() }
    }

    /// Whether the bytes are in the memory given to `init(writingInto:)` (it was large enough).
    var isInGivenMemory: Bool { !ownsMemory }

    var isEmpty: Bool { count == 0 }

    /// Makes room for at least `n` more bytes (after which `base` is not nil).
    @inline(__always)
    mutating func reserve(_ n: Int) {
        if capacity &- count < n { grow(n) }
    }

    @inline(never)
    private mutating func grow(_ n: Int) {
        let newCapacity = max(capacity * 2, count + n, 64)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        if let base {
            newBase.initialize(from: base, count: count)
            if ownsMemory { base.deallocate() }
        }
        base = newBase
        ownsMemory = true
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base.unsafelyUnwrapped[count] = byte
        count &+= 1
    }

    @inline(__always)
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        let n = bytes.count
        guard n > 0 else { return }
        reserve(n)
        (base.unsafelyUnwrapped + count).initialize(from: bytes.baseAddress!, count: n)
        count &+= n
    }

    @inline(__always)
    mutating func append(contentsOf bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        reserve(n)
        UnsafeMutableRawPointer(base.unsafelyUnwrapped + count).copyMemory(from: bytes.baseAddress!, byteCount: n)
        count &+= n
    }

    @inline(__always)
    mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func append(contentsOf text: String.UTF8View) {
        var s = String(text)
        s.withUTF8 { append(contentsOf: $0) }
    }

    mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        for b in bytes { append(b) }
    }

    /// Lets `body` write at most `maxCount` bytes at the end (it returns how many it wrote).
    @inline(__always)
    mutating func append(upTo maxCount: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> Int) {
        guard maxCount > 0 else { return }
        reserve(maxCount)
        let written = body(UnsafeMutableBufferPointer(start: base.unsafelyUnwrapped + count, count: maxCount))
        precondition(written >= 0 && written <= maxCount, "wrote outside the reserved space")
        count &+= written
    }

    /// Forgets the bytes, keeping the memory.
    mutating func removeAll() { count = 0 }

    /// The bytes written, read in place.
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws(Never) -> R) -> R {
        body(UnsafeBufferPointer(start: base, count: count))
    }

    /// A copy of the bytes.
    var bytes: [UInt8] { withBytes { Array($0) } }

    /// The bytes as a string (invalid UTF-8 repaired, as `String(decoding:as:)` does).
    var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }
}
