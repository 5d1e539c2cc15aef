/// A value a Liquid template sees: the data of a render context, the result of an expression or a filter.
///
/// Values are plain `Sendable` data, built directly from JSON or from store rows (no `Any`, no `Mirror`).
/// Semantics follow Shopify's Ruby Liquid: `nil` and `false` are the only falsy values; integers and floats
/// are distinct (Ruby's `Integer` and `Float`); a range is Ruby's inclusive `(a..b)`.
public enum LiquidValue: Sendable, Hashable {
    case `nil`
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([LiquidValue])
    case object(LiquidObject)
    /// Ruby's `(first..last)`, inclusive at both ends; empty when `last < first`.
    case range(first: Int, last: Int)
    /// An object computed on access (Ruby's `Liquid::Drop`), e.g. `forloop`.
    case drop(LiquidDropBox)

    /// Liquid truthiness: everything except `nil` and `false` is truthy (`0` and `""` too).
    @inlinable public var isTruthy: Bool {
        switch self {
        case .nil: false
        case .bool(let b): b
        default: true
        }
    }
}

/// A string-keyed map that keeps insertion order (Ruby hashes do, and `for` over a hash follows it).
///
/// Keys and values are kept in insertion order with a precomputed 64-bit hash per key (FNV-1a of the
/// UTF-8 bytes, as Ruby compares hash keys bytewise); small objects are searched linearly by hash, larger
/// ones through an open-addressing index. Lookups with a hash computed at parse time hash nothing.
/// The storage is one copy-on-write reference, so copying an object (or a `LiquidValue` holding one)
/// costs one retain.
public struct LiquidObject: Sendable, Hashable {
    /// The shared storage; mutated only when uniquely referenced (copy on write).
    @usableFromInline final class Storage: @unchecked Sendable {
        @exclusivity(unchecked) @usableFromInline var keys: [String] = []
        @exclusivity(unchecked) @usableFromInline var values: [LiquidValue] = []
        @exclusivity(unchecked) @usableFromInline var hashes: [UInt64] = []
        /// Open-addressing slots (index + 1, 0 = empty) once the object has more than `linearLimit` keys.
        @exclusivity(unchecked) @usableFromInline var table: [Int32] = []

        @usableFromInline init() {}

        @usableFromInline func copy() -> Storage {
            let s = Storage()
            s.keys = keys
            s.values = values
            s.hashes = hashes
            s.table = table
            return s
        }
    }

    @usableFromInline var s: Storage

    @usableFromInline static var linearLimit: Int { 12 }

    /// An empty object.
    public init() { s = Storage() }

    /// An object from key/value pairs in order; a repeated key keeps its first position and its last value.
    public init(_ pairs: [(String, LiquidValue)]) {
        self.init()
        s.keys.reserveCapacity(pairs.count)
        s.values.reserveCapacity(pairs.count)
        s.hashes.reserveCapacity(pairs.count)
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
        let s = self.s
        if s.table.isEmpty {
            return s.hashes.withUnsafeBufferPointer { hashes in
                s.keys.withUnsafeBufferPointer { keys in
                    for i in 0..<hashes.count where hashes[i] == hash && keys[i] == key { return i }
                    return nil
                }
            }
        }
        let mask = s.table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(s.table[slot])
            if entry == 0 { return nil }
            if s.hashes[entry - 1] == hash, s.keys[entry - 1] == key { return entry - 1 }
            slot = (slot + 1) & mask
        }
    }

    /// The value for `key` given its precomputed ``hash(_:)``.
    @inlinable @inline(__always) func value(forKey key: String, hash: UInt64) -> LiquidValue? {
        guard let i = index(of: key, hash: hash) else { return nil }
        return s.values.withUnsafeBufferPointer { $0[i] }
    }

    @usableFromInline static func rebuildTable(_ s: Storage) {
        guard s.keys.count > linearLimit else {
            s.table = []
            return
        }
        var size = 16
        while size < s.keys.count * 2 { size <<= 1 }
        var table = [Int32](repeating: 0, count: size)
        let mask = size - 1
        for (i, h) in s.hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: h) & mask
            while table[slot] != 0 { slot = (slot + 1) & mask }
            table[slot] = Int32(i + 1)
        }
        s.table = table
    }

    /// The number of keys.
    @inlinable public var count: Int { s.keys.count }

    /// The value for a key, or `nil` when absent.
    public subscript(key: String) -> LiquidValue? {
        get { value(forKey: key, hash: Self.hash(key)) }
        set {
            if !isKnownUniquelyReferenced(&s) { s = s.copy() }
            let h = Self.hash(key)
            if let i = index(of: key, hash: h) {
                if let newValue {
                    s.values[i] = newValue
                } else {
                    s.keys.remove(at: i)
                    s.values.remove(at: i)
                    s.hashes.remove(at: i)
                    Self.rebuildTable(s)
                }
            } else if let newValue {
                s.keys.append(key)
                s.values.append(newValue)
                s.hashes.append(h)
                if !s.table.isEmpty, s.keys.count * 2 <= s.table.count {
                    let mask = s.table.count - 1
                    var slot = Int(truncatingIfNeeded: h) & mask
                    while s.table[slot] != 0 { slot = (slot + 1) & mask }
                    s.table[slot] = Int32(s.keys.count)
                } else if s.keys.count > Self.linearLimit {
                    Self.rebuildTable(s)
                }
            }
        }
    }

    /// The keys in insertion order.
    @inlinable public var orderedKeys: [String] { s.keys }

    /// The values in insertion order.
    @inlinable public var orderedValues: [LiquidValue] { s.values }

    /// Key/value pairs in insertion order.
    @inlinable public var pairs: [(key: String, value: LiquidValue)] {
        var out: [(key: String, value: LiquidValue)] = []
        out.reserveCapacity(s.keys.count)
        for i in s.keys.indices { out.append((s.keys[i], s.values[i])) }
        return out
    }

    /// The values keyed by name (unordered).
    var storage: [String: LiquidValue] {
        var d: [String: LiquidValue] = [:]
        d.reserveCapacity(s.keys.count)
        for i in s.keys.indices { d[s.keys[i]] = s.values[i] }
        return d
    }

    public static func == (lhs: LiquidObject, rhs: LiquidObject) -> Bool {
        if lhs.s === rhs.s { return true }
        guard lhs.count == rhs.count else { return false }
        for i in lhs.s.keys.indices {
            guard let j = rhs.index(of: lhs.s.keys[i], hash: lhs.s.hashes[i]), rhs.s.values[j] == lhs.s.values[i] else {
                return false
            }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, as equality is.
        var combined = 0
        for i in s.keys.indices {
            var h = Hasher()
            h.combine(s.keys[i])
            h.combine(s.values[i])
            combined ^= h.finalize()
        }
        hasher.combine(s.keys.count)
        hasher.combine(combined)
    }
}

/// An object whose properties are computed on access (Ruby's `Liquid::Drop`).
public protocol LiquidDrop: Sendable {
    /// The value of a property, or `.nil` when the drop has none by that name.
    func property(_ name: String) -> LiquidValue
    /// How the drop prints in `{{ }}` output (Ruby calls `to_s`).
    var displayString: String { get }
}

/// Boxes a drop so that `LiquidValue` stays `Hashable`; drops compare by identity of their box.
public final class LiquidDropBox: Sendable, Hashable {
    /// The drop.
    public let drop: any LiquidDrop
    /// Boxes `drop`.
    public init(_ drop: any LiquidDrop) { self.drop = drop }
    public static func == (lhs: LiquidDropBox, rhs: LiquidDropBox) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

extension LiquidValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .nil }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: LiquidValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, LiquidValue)...) { self = .object(LiquidObject(elements)) }
}
