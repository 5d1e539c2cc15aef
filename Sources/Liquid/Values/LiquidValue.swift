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
