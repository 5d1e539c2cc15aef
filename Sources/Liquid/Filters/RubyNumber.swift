/// A number as Ruby Liquid's `Utils.to_number` yields it: an `Integer`, or a `BigDecimal` (a float input or a
/// decimal string). The math filters compute on these and turn a `BigDecimal` result back into a `Float`, as
/// `apply_operation` does (`result.is_a?(BigDecimal) ? result.to_f : result`).
///
/// `BigDecimal` is modelled exactly while it fits a 128-bit mantissa (`RubyDecimal`); beyond that (and for
/// `Infinity`/`NaN`) the value is carried as a `Double`. Ruby's `Integer` is unbounded; on `Int` overflow the
/// result falls back to `Double` instead of trapping.
enum RubyNumber: Sendable, Equatable {
    case int(Int)
    case decimal(RubyDecimal)
    /// A non-finite `BigDecimal`, or a fallback when an exact result does not fit.
    case float(Double)

    /// The number as a `Double` (Ruby's `to_f`).
    var doubleValue: Double {
        switch self {
        case .int(let i): Double(i)
        case .decimal(let d): d.doubleValue
        case .float(let f): f
        }
    }

    /// The value a filter returns: integers stay integers, `BigDecimal` becomes a float.
    var liquidValue: LiquidValue {
        switch self {
        case .int(let i): .int(i)
        case .decimal(let d): .double(d.doubleValue)
        case .float(let f): .double(f)
        }
    }

    /// Whether this is zero.
    var isZero: Bool {
        switch self {
        case .int(let i): i == 0
        case .decimal(let d): d.mantissa == 0
        case .float(let f): f == 0
        }
    }

    private var asDecimal: RubyDecimal? {
        switch self {
        case .int(let i): RubyDecimal(mantissa: Int128(i), exponent: 0)
        case .decimal(let d): d
        case .float: nil
        }
    }

    /// `a + b`.
    static func + (a: RubyNumber, b: RubyNumber) -> RubyNumber {
        if case .int(let x) = a, case .int(let y) = b {
            let (r, o) = x.addingReportingOverflow(y)
            return o ? .float(Double(x) + Double(y)) : .int(r)
        }
        if let x = a.asDecimal, let y = b.asDecimal, let r = x.adding(y) { return .decimal(r) }
        return .float(a.doubleValue + b.doubleValue)
    }

    /// `a - b`.
    static func - (a: RubyNumber, b: RubyNumber) -> RubyNumber {
        if case .int(let x) = a, case .int(let y) = b {
            let (r, o) = x.subtractingReportingOverflow(y)
            return o ? .float(Double(x) - Double(y)) : .int(r)
        }
        if let x = a.asDecimal, let y = b.asDecimal, let r = x.adding(y.negated) { return .decimal(r) }
        return .float(a.doubleValue - b.doubleValue)
    }

    /// `a * b`.
    static func * (a: RubyNumber, b: RubyNumber) -> RubyNumber {
        if case .int(let x) = a, case .int(let y) = b {
            let (r, o) = x.multipliedReportingOverflow(by: y)
            return o ? .float(Double(x) * Double(y)) : .int(r)
        }
        if let x = a.asDecimal, let y = b.asDecimal, let r = x.multiplied(by: y) { return .decimal(r) }
        return .float(a.doubleValue * b.doubleValue)
    }

    /// Ruby's `a / b`: integers floor; a `BigDecimal` divided by zero is `Infinity`/`NaN`.
    func divided(by b: RubyNumber) throws(LiquidFilterError) -> RubyNumber {
        if case .int(let x) = self, case .int(let y) = b {
            if y == 0 { throw LiquidFilterError(.zeroDivision, "divided by 0") }
            if x == .min && y == -1 { return .float(-Double(x)) }
            let q = x / y
            return (x % y != 0 && ((x < 0) != (y < 0))) ? .int(q - 1) : .int(q)
        }
        return .float(doubleValue / b.doubleValue)
    }

    /// Ruby's `a % b`: the result takes the sign of the divisor; zero divisor raises.
    func modulo(_ b: RubyNumber) throws(LiquidFilterError) -> RubyNumber {
        if b.isZero { throw LiquidFilterError(.zeroDivision, "divided by 0") }
        if case .int(let x) = self, case .int(let y) = b {
            if y == -1 { return .int(0) }
            let r = x % y
            return (r != 0 && ((r < 0) != (y < 0))) ? .int(r + y) : .int(r)
        }
        if let x = asDecimal, let y = b.asDecimal, let r = x.modulo(y) { return .decimal(r) }
        let x = doubleValue, y = b.doubleValue
        if !x.isFinite || y.isNaN { return .float(.nan) }
        if y.isInfinite { return .float((x == 0 || (x < 0) == (y < 0)) ? x : y) }
        var r = x.truncatingRemainder(dividingBy: y)
        if r != 0 && ((r < 0) != (y < 0)) { r += y }
        return .float(r)
    }

    /// Ruby's `<=>` between two numbers (NaN compares as unordered: `nil`).
    static func compare(_ a: RubyNumber, _ b: RubyNumber) -> Int? {
        if case .int(let x) = a, case .int(let y) = b { return x < y ? -1 : (x > y ? 1 : 0) }
        if let x = a.asDecimal, let y = b.asDecimal, let d = x.adding(y.negated) { return d.mantissa == 0 ? 0 : (d.mantissa < 0 ? -1 : 1) }
        let x = a.doubleValue, y = b.doubleValue
        if x.isNaN || y.isNaN { return nil }
        return x < y ? -1 : (x > y ? 1 : 0)
    }
}

/// An exact decimal `mantissa × 10^exponent` (Ruby's `BigDecimal` for the values Liquid meets), normalized
/// so that the mantissa has no trailing zeros.
struct RubyDecimal: Sendable, Equatable {
    var mantissa: Int128
    var exponent: Int

    init(mantissa: Int128, exponent: Int) {
        var m = mantissa, e = exponent
        if m == 0 {
            e = 0
        } else {
            while m % 10 == 0 {
                m /= 10
                e += 1
            }
        }
        self.mantissa = m
        self.exponent = e
    }

    var negated: RubyDecimal { RubyDecimal(mantissa: 0 - mantissa, exponent: exponent) }

    /// `10^n` for n in 0...38, or nil.
    static func power(_ n: Int) -> Int128? {
        guard n >= 0, n <= 38 else { return nil }
        var p: Int128 = 1
        for _ in 0..<n { p &*= 10 }
        return p
    }

    /// Both mantissas on the smaller exponent, or nil when that overflows.
    private static func aligned(_ a: RubyDecimal, _ b: RubyDecimal) -> (Int128, Int128, Int)? {
        if a.exponent == b.exponent { return (a.mantissa, b.mantissa, a.exponent) }
        if a.mantissa == 0 { return (0, b.mantissa, b.exponent) }
        if b.mantissa == 0 { return (a.mantissa, 0, a.exponent) }
        if a.exponent > b.exponent {
            guard let p = power(a.exponent - b.exponent) else { return nil }
            let (m, o) = a.mantissa.multipliedReportingOverflow(by: p)
            return o ? nil : (m, b.mantissa, b.exponent)
        }
        guard let p = power(b.exponent - a.exponent) else { return nil }
        let (m, o) = b.mantissa.multipliedReportingOverflow(by: p)
        return o ? nil : (a.mantissa, m, a.exponent)
    }

    func adding(_ other: RubyDecimal) -> RubyDecimal? {
        guard let (x, y, e) = RubyDecimal.aligned(self, other) else { return nil }
        let (s, o) = x.addingReportingOverflow(y)
        return o ? nil : RubyDecimal(mantissa: s, exponent: e)
    }

    func multiplied(by other: RubyDecimal) -> RubyDecimal? {
        let (m, o) = mantissa.multipliedReportingOverflow(by: other.mantissa)
        let (e, o2) = exponent.addingReportingOverflow(other.exponent)
        return (o || o2) ? nil : RubyDecimal(mantissa: m, exponent: e)
    }

    func modulo(_ other: RubyDecimal) -> RubyDecimal? {
        guard other.mantissa != 0, let (x, y, e) = RubyDecimal.aligned(self, other) else { return nil }
        if y == -1 { return RubyDecimal(mantissa: 0, exponent: 0) }
        var r = x % y
        if r != 0 && ((r < 0) != (y < 0)) { r += y }
        return RubyDecimal(mantissa: r, exponent: e)
    }

    /// Ruby's `BigDecimal#to_f` (correctly rounded).
    var doubleValue: Double {
        if mantissa == 0 { return 0 }
        let magnitude = mantissa.magnitude
        if magnitude < (1 << 53) && exponent >= -22 && exponent <= 22 {
            let m = Double(Int64(truncatingIfNeeded: mantissa))
            let p = RubyDecimal.doublePowers[abs(exponent)]
            return exponent >= 0 ? m * p : m / p
        }
        if exponent > 400 { return mantissa < 0 ? -.infinity : .infinity }
        if exponent < -400 - 40 { return mantissa < 0 ? -0.0 : 0.0 }
        return Double("\(mantissa)e\(exponent)") ?? Double(mantissa)
    }

    private static let doublePowers: [Double] = {
        var p: [Double] = [1]
        for _ in 1...22 { p.append(p[p.count - 1] * 10) }
        return p
    }()

    /// Parses `-?digits(.digits)?(e[+-]?digits)?` (Ruby's `Float#to_s` output and Liquid's decimal strings);
    /// nil when malformed or too long for the mantissa.
    static func parse(_ text: Substring.UTF8View) -> RubyDecimal? {
        var m: Int128 = 0
        var e = 0
        var negative = false
        var sawDigit = false
        var i = text.startIndex
        if i < text.endIndex, text[i] == UInt8(ascii: "-") {
            negative = true
            i = text.index(after: i)
        } else if i < text.endIndex, text[i] == UInt8(ascii: "+") {
            i = text.index(after: i)
        }
        var afterPoint = false
        while i < text.endIndex {
            let c = text[i]
            if c >= 48 && c <= 57 {
                sawDigit = true
                let (m1, o1) = m.multipliedReportingOverflow(by: 10)
                let (m2, o2) = m1.addingReportingOverflow(Int128(c - 48))
                if o1 || o2 { return nil }
                m = m2
                if afterPoint { e -= 1 }
            } else if c == UInt8(ascii: "."), !afterPoint {
                afterPoint = true
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                i = text.index(after: i)
                var expNegative = false
                if i < text.endIndex, text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+") {
                    expNegative = text[i] == UInt8(ascii: "-")
                    i = text.index(after: i)
                }
                var x = 0
                var sawExpDigit = false
                while i < text.endIndex {
                    let d = text[i]
                    guard d >= 48 && d <= 57 else { return nil }
                    sawExpDigit = true
                    if x < 100_000 { x = x * 10 + Int(d - 48) }
                    i = text.index(after: i)
                }
                guard sawExpDigit else { return nil }
                e += expNegative ? -x : x
                break
            } else {
                return nil
            }
            i = text.index(after: i)
        }
        guard sawDigit else { return nil }
        return RubyDecimal(mantissa: negative ? 0 - m : m, exponent: e)
    }

    /// Ruby's `BigDecimal(float.to_s)`: the shortest decimal that round-trips, exactly.
    init?(_ d: Double) {
        guard d.isFinite else { return nil }
        if d == 0 {
            self.init(mantissa: 0, exponent: 0)
            return
        }
        if d == d.rounded(.towardZero), d.magnitude < 9.0e15 {
            self.init(mantissa: Int128(Int(d)), exponent: 0)
            return
        }
        if let s = ShortDecimal(d) {
            self.init(mantissa: Int128(s.mantissa), exponent: -s.scale)
            return
        }
        let text = d.description
        guard let parsed = RubyDecimal.parse(Substring(text).utf8) else { return nil }
        self = parsed
    }

    /// Rounds half away from zero to `digits` decimal places (negative: tens, hundreds...), as
    /// `BigDecimal#round(n)` with the default `ROUND_HALF_UP` mode.
    func rounded(toPlaces digits: Int, rule: FloatingPointRoundingRule = .toNearestOrAwayFromZero) -> RubyDecimal {
        // Keep digits down to 10^-digits.
        let drop = -digits - exponent  // how many mantissa digits to drop
        if drop <= 0 { return self }
        guard let p = RubyDecimal.power(drop) else {
            // Dropping more digits than the mantissa can have: the result is 0 or one unit.
            switch rule {
            case .up where mantissa > 0, .down where mantissa < 0:
                // ceil of a positive / floor of a negative
                if let unit = RubyDecimal.power(0) {
                    return RubyDecimal(mantissa: mantissa > 0 ? unit : -unit, exponent: -digits)
                }
                return self
            default:
                return RubyDecimal(mantissa: 0, exponent: 0)
            }
        }
        var q = mantissa / p
        let r = mantissa % p
        if r != 0 {
            switch rule {
            case .up: if r > 0 { q += 1 }
            case .down: if r < 0 { q -= 1 }
            case .towardZero: break
            default:
                // Half away from zero: compare 2|r| with p.
                let twice = r.magnitude.multipliedReportingOverflow(by: 2)
                if twice.overflow || twice.partialValue >= p.magnitude { q += r > 0 ? 1 : -1 }
            }
        }
        return RubyDecimal(mantissa: q, exponent: -digits)
    }

    /// The value as an `Int` when it is integral and fits.
    var intValue: Int? {
        if exponent < 0 { return nil }
        var m = mantissa
        for _ in 0..<exponent {
            let (r, o) = m.multipliedReportingOverflow(by: 10)
            if o { return nil }
            m = r
        }
        return Int(exactly: m)
    }
}
