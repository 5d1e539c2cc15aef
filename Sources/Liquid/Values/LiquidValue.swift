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
public struct LiquidObject: Sendable, Hashable {
    @usableFromInline var keys: [String]
    @usableFromInline var storage: [String: LiquidValue]

    /// An empty object.
    public init() {
        keys = []
        storage = [:]
    }

    /// An object from key/value pairs in order; a repeated key keeps its first position and its last value.
    public init(_ pairs: [(String, LiquidValue)]) {
        self.init()
        keys.reserveCapacity(pairs.count)
        storage.reserveCapacity(pairs.count)
        for (k, v) in pairs { self[k] = v }
    }

    /// The number of keys.
    @inlinable public var count: Int { keys.count }

    /// The value for a key, or `nil` when absent.
    @inlinable public subscript(key: String) -> LiquidValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// The keys in insertion order.
    @inlinable public var orderedKeys: [String] { keys }

    /// Key/value pairs in insertion order.
    @inlinable public var pairs: [(key: String, value: LiquidValue)] {
        keys.map { ($0, storage[$0]!) }
    }

    public static func == (lhs: LiquidObject, rhs: LiquidObject) -> Bool { lhs.storage == rhs.storage }
    public func hash(into hasher: inout Hasher) { hasher.combine(storage) }
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
