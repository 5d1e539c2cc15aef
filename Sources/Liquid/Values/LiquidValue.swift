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
public struct LiquidObject: Sendable, Hashable {
    @usableFromInline var keys: [String]
    @usableFromInline var values: [LiquidValue]
    @usableFromInline var hashes: [UInt64]
    /// Open-addressing slots (index + 1, 0 = empty) once the object has more than `linearLimit` keys.
    @usableFromInline var table: [Int32]

    @usableFromInline static var linearLimit: Int { 12 }

    /// An empty object.
    public init() {
        keys = []
        values = []
        hashes = []
        table = []
    }

    /// An object from key/value pairs in order; a repeated key keeps its first position and its last value.
    public init(_ pairs: [(String, LiquidValue)]) {
        self.init()
        keys.reserveCapacity(pairs.count)
        values.reserveCapacity(pairs.count)
        hashes.reserveCapacity(pairs.count)
        for (k, v) in pairs { self[k] = v }
    }

    /// FNV-1a over the key's UTF-8 bytes.
    @inlinable static func hash(_ key: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key.utf8 {
            h = (h ^ UInt64(b)) &* 0x100_0000_01b3
        }
        return h
    }

    /// The position of `key` (whose ``hash(_:)`` is `hash`), if present.
    @inlinable func index(of key: String, hash: UInt64) -> Int? {
        if table.isEmpty {
            var i = 0
            let n = hashes.count
            while i < n {
                if hashes[i] == hash, keys[i] == key { return i }
                i += 1
            }
            return nil
        }
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(table[slot])
            if entry == 0 { return nil }
            if hashes[entry - 1] == hash, keys[entry - 1] == key { return entry - 1 }
            slot = (slot + 1) & mask
        }
    }

    /// The value for `key` given its precomputed ``hash(_:)``.
    @inlinable func value(forKey key: String, hash: UInt64) -> LiquidValue? {
        guard let i = index(of: key, hash: hash) else { return nil }
        return values[i]
    }

    @usableFromInline mutating func rebuildTable() {
        guard keys.count > Self.linearLimit else {
            table = []
            return
        }
        var size = 16
        while size < keys.count * 2 { size <<= 1 }
        table = [Int32](repeating: 0, count: size)
        let mask = size - 1
        for (i, h) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: h) & mask
            while table[slot] != 0 { slot = (slot + 1) & mask }
            table[slot] = Int32(i + 1)
        }
    }

    /// The number of keys.
    @inlinable public var count: Int { keys.count }

    /// The value for a key, or `nil` when absent.
    public subscript(key: String) -> LiquidValue? {
        get { value(forKey: key, hash: Self.hash(key)) }
        set {
            let h = Self.hash(key)
            if let i = index(of: key, hash: h) {
                if let newValue {
                    values[i] = newValue
                } else {
                    keys.remove(at: i)
                    values.remove(at: i)
                    hashes.remove(at: i)
                    rebuildTable()
                }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
                hashes.append(h)
                if !table.isEmpty, keys.count * 2 <= table.count {
                    let mask = table.count - 1
                    var slot = Int(truncatingIfNeeded: h) & mask
                    while table[slot] != 0 { slot = (slot + 1) & mask }
                    table[slot] = Int32(keys.count)
                } else if keys.count > Self.linearLimit {
                    rebuildTable()
                }
            }
        }
    }

    /// The keys in insertion order.
    @inlinable public var orderedKeys: [String] { keys }

    /// Key/value pairs in insertion order.
    @inlinable public var pairs: [(key: String, value: LiquidValue)] {
        var out: [(key: String, value: LiquidValue)] = []
        out.reserveCapacity(keys.count)
        for i in keys.indices { out.append((keys[i], values[i])) }
        return out
    }

    /// The values keyed by name (unordered).
    var storage: [String: LiquidValue] {
        var d: [String: LiquidValue] = [:]
        d.reserveCapacity(keys.count)
        for i in keys.indices { d[keys[i]] = values[i] }
        return d
    }

    public static func == (lhs: LiquidObject, rhs: LiquidObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for i in lhs.keys.indices {
            guard let j = rhs.index(of: lhs.keys[i], hash: lhs.hashes[i]), rhs.values[j] == lhs.values[i] else {
                return false
            }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, as equality is.
        var combined = 0
        for i in keys.indices {
            var h = Hasher()
            h.combine(keys[i])
            h.combine(values[i])
            combined ^= h.finalize()
        }
        hasher.combine(keys.count)
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
