import Synchronization

/// A string-keyed map that keeps insertion order (Ruby hashes do, and `for` over a hash follows it).
///
/// The entries (a precomputed 64-bit hash per key: FNV-1a of the UTF-8 bytes, as Ruby compares hash keys
/// bytewise; the key; the value) are kept in insertion order in one allocation with the object's header, so
/// a lookup reads one or two cache lines. Small objects are searched linearly by hash, larger ones through an open-addressing
/// index. Lookups with a hash computed at parse time hash nothing, and a lookup site can remember where it
/// last found its key (``LookupHint``): objects of one shape (the profiles of a workload) then need no search.
/// The storage is one copy-on-write reference, so copying an object (or a `LiquidValue` holding one)
/// costs one retain. It is `Sendable` as `Array` is: the storage is mutated only through a uniquely
/// referenced object (`ManagedBuffer`, which holds it, is not `Sendable` itself, hence `@unchecked`).
public struct LiquidObject: @unchecked Sendable, Hashable {
    /// One key with its hash and value.
    @usableFromInline struct Entry {
        @usableFromInline var hash: UInt64
        @usableFromInline var key: String
        @usableFromInline var value: LiquidValue

        @usableFromInline init(hash: UInt64, key: String, value: LiquidValue) {
            self.hash = hash
            self.key = key
            self.value = value
        }
    }

    /// The storage's count, capacity and index.
    @usableFromInline struct Header {
        @usableFromInline var count: Int
        @usableFromInline var capacity: Int
        /// Open-addressing slots (index + 1, 0 = empty) once the object has more than `linearLimit` keys.
        @usableFromInline var table: [Int32]

        @usableFromInline init(capacity: Int) {
            count = 0
            self.capacity = capacity
            table = []
        }
    }

    /// The shared storage: the entries tail-allocated after the header (one allocation, read through
    /// pointers without retaining anything); mutated only when uniquely referenced (copy on write).
    @usableFromInline final class Storage: ManagedBuffer<Header, Entry> {
        @usableFromInline static func make(capacity: Int) -> Storage {
            let buffer = Storage.create(minimumCapacity: capacity) { _ in Header(capacity: capacity) }
            return unsafeDowncast(buffer, to: Storage.self)
        }

        deinit {
            _ = withUnsafeMutablePointers { header, entries in entries.deinitialize(count: header.pointee.count) }
        }

        /// The entries, read in place.
        @inlinable @inline(__always)
        func withEntries<R>(_ body: (UnsafeBufferPointer<Entry>) throws(Never) -> R) -> R {
            withUnsafeMutablePointers { header, entries in
                body(UnsafeBufferPointer(start: entries, count: header.pointee.count))
            }
        }

        /// A copy with room for `capacity` entries (at least the current count).
        @usableFromInline func copy(capacity: Int) -> Storage {
            let s = Storage.make(capacity: Swift.max(capacity, header.count))
            withUnsafeMutablePointers { header, entries in
                s.withUnsafeMutablePointers { newHeader, newEntries in
                    newEntries.initialize(from: entries, count: header.pointee.count)
                    newHeader.pointee.count = header.pointee.count
                    newHeader.pointee.table = header.pointee.table
                }
            }
            return s
        }
    }

    @usableFromInline var s: Storage

    @usableFromInline static var linearLimit: Int { 12 }

    /// An empty object.
    public init() { s = Storage.make(capacity: 4) }

    /// An empty object with room for `capacity` keys.
    init(capacity: Int) { s = Storage.make(capacity: capacity) }

    /// An object from key/value pairs in order; a repeated key keeps its first position and its last value.
    public init(_ pairs: [(String, LiquidValue)]) {
        self.init(capacity: pairs.count)
        for (k, v) in pairs { self[k] = v }
    }

    /// FNV-1a over the key's UTF-8 bytes.
    @inlinable static func hash(_ key: String) -> UInt64 {
        var key = key
        return key.withUTF8 { bytes in
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in bytes {
                h = (h ^ UInt64(b)) &* 0x100_0000_01b3
            }
            return h
        }
    }

    /// The position of `key` (whose ``hash(_:)`` is `hash`), if present.
    @inlinable @inline(__always) func index(of key: String, hash: UInt64) -> Int? {
        s.withUnsafeMutablePointers { header, entries in
            let count = header.pointee.count
            if header.pointee.table.isEmpty {
                for i in 0..<count where entries[i].hash == hash && entries[i].key == key { return i }
                return nil
            }
            return header.pointee.table.withUnsafeBufferPointer { table in
                let mask = table.count - 1
                var slot = Int(truncatingIfNeeded: hash) & mask
                while true {
                    let entry = Int(table[slot])
                    if entry == 0 { return nil }
                    if entries[entry - 1].hash == hash, entries[entry - 1].key == key { return entry - 1 }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    /// The position of `key`, trying position `guess` first (where the key was in the last object of
    /// this shape a lookup site saw, see ``LookupHint``).
    @inline(__always) func index(of key: String, hash: UInt64, guess: Int) -> Int? {
        let hit = s.withEntries { entries in
            guess < entries.count && entries[guess].hash == hash && entries[guess].key == key
        }
        return hit ? guess : index(of: key, hash: hash)
    }

    /// The value for `key` given its precomputed ``hash(_:)``.
    @inlinable @inline(__always) func value(forKey key: String, hash: UInt64) -> LiquidValue? {
        guard let i = index(of: key, hash: hash) else { return nil }
        return s.withEntries { $0[i].value }
    }

    /// The value at position `index` (from ``index(of:hash:)``).
    @inline(__always) func value(at index: Int) -> LiquidValue {
        s.withEntries { $0[index].value }
    }

    @usableFromInline static func rebuildTable(_ s: Storage) {
        let count = s.header.count
        guard count > linearLimit else {
            s.header.table = []
            return
        }
        var size = 16
        while size < count * 2 { size <<= 1 }
        var table = [Int32](repeating: 0, count: size)
        let mask = size - 1
        s.withEntries { entries in
            for (i, e) in entries.enumerated() {
                var slot = Int(truncatingIfNeeded: e.hash) & mask
                while table[slot] != 0 { slot = (slot + 1) & mask }
                table[slot] = Int32(i + 1)
            }
        }
        s.header.table = table
    }

    /// The number of keys.
    @inlinable public var count: Int { s.header.count }

    /// The value for a key, or `nil` when absent.
    public subscript(key: String) -> LiquidValue? {
        get { value(forKey: key, hash: Self.hash(key)) }
        set {
            if !isKnownUniquelyReferenced(&s) { s = s.copy(capacity: s.header.capacity) }
            let h = Self.hash(key)
            if let i = index(of: key, hash: h) {
                s.withUnsafeMutablePointers { header, entries in
                    if let newValue {
                        entries[i].value = newValue
                    } else {
                        let count = header.pointee.count
                        (entries + i).deinitialize(count: 1)
                        (entries + i).moveInitialize(from: entries + i + 1, count: count - i - 1)
                        header.pointee.count = count - 1
                    }
                }
                if newValue == nil { Self.rebuildTable(s) }
            } else if let newValue {
                if s.header.count == s.header.capacity { s = s.copy(capacity: Swift.max(4, s.header.capacity * 2)) }
                let count = s.withUnsafeMutablePointers { header, entries in
                    (entries + header.pointee.count).initialize(to: Entry(hash: h, key: key, value: newValue))
                    header.pointee.count += 1
                    return header.pointee.count
                }
                if !s.header.table.isEmpty, count * 2 <= s.header.table.count {
                    let mask = s.header.table.count - 1
                    var slot = Int(truncatingIfNeeded: h) & mask
                    while s.header.table[slot] != 0 { slot = (slot + 1) & mask }
                    s.header.table[slot] = Int32(count)
                } else if count > Self.linearLimit {
                    Self.rebuildTable(s)
                }
            }
        }
    }

    /// The keys in insertion order.
    @inlinable public var orderedKeys: [String] { s.withEntries { $0.map(\.key) } }

    /// The values in insertion order.
    @inlinable public var orderedValues: [LiquidValue] { s.withEntries { $0.map(\.value) } }

    /// Key/value pairs in insertion order.
    @inlinable public var pairs: [(key: String, value: LiquidValue)] { s.withEntries { $0.map { ($0.key, $0.value) } } }

    /// The values keyed by name (unordered).
    var storage: [String: LiquidValue] {
        var d: [String: LiquidValue] = [:]
        d.reserveCapacity(count)
        s.withEntries { for e in $0 { d[e.key] = e.value } }
        return d
    }

    public static func == (lhs: LiquidObject, rhs: LiquidObject) -> Bool {
        if lhs.s === rhs.s { return true }
        guard lhs.count == rhs.count else { return false }
        return lhs.s.withEntries { entries in
            for e in entries {
                guard let j = rhs.index(of: e.key, hash: e.hash), rhs.value(at: j) == e.value else { return false }
            }
            return true
        }
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, as equality is.
        var combined = 0
        s.withEntries { entries in
            for e in entries {
                var h = Hasher()
                h.combine(e.key)
                h.combine(e.value)
                combined ^= h.finalize()
            }
        }
        hasher.combine(count)
        hasher.combine(combined)
    }
}

/// Where a lookup site (a variable path of a template) last found its key in an object: the next object of
/// the same shape has it at the same position, checked first. Shared by the renders of a template on any
/// thread (a relaxed atomic: a stale position only costs a search).
struct LookupHint: ~Copyable, Sendable {
    private let slot = Atomic<Int>(0)

    init() {}

    /// The remembered position.
    @inline(__always) var position: Int { slot.load(ordering: .relaxed) }

    /// Remembers `position` for the next lookup.
    @inline(__always) func remember(_ position: Int) { slot.store(position, ordering: .relaxed) }
}
