/// A decimal `mantissa × 10^-scale` small enough that binary floating point handles it exactly: the fast
/// path of Ruby's `BigDecimal(float.to_s)` arithmetic in the math filters, and of `Float#to_s`.
///
/// Every operation either gives the exact decimal result or `nil` (the caller then takes the general
/// ``RubyDecimal`` path), so results are identical to the slow path.
///
/// Why it is exact: for a double `d` and the smallest `scale` (0...17) for which an integer `m` with
/// `|m| < 2^50` satisfies `Double(m) / 10^scale == d` (a correctly rounded division of two exactly
/// representable numbers), the spacing `10^-scale` exceeds four units in the last place of `d`, so `m` is the
/// only decimal with that many fraction digits that reads back as `d`, and none with fewer does: `m × 10^-scale`
/// is the shortest round-trip decimal of `d`, the one Ruby's `Float#to_s` prints.
struct ShortDecimal: Sendable, Equatable {
    /// The digits, with the sign.
    var mantissa: Int64
    /// Digits after the decimal point (0...22).
    var scale: Int

    /// `2^50`: the bound on the mantissa of a value read from a double.
    static let readBound: Double = 1_125_899_906_842_624
    /// `2^53`: every integer up to it is a double.
    static let exactBound: Int64 = 1 << 53

    @inline(__always)
    init(mantissa: Int64, scale: Int) {
        self.mantissa = mantissa
        self.scale = scale
    }

    /// `10^n` as a double, exact for n in 0...22.
    @inline(__always)
    static func power(_ n: Int) -> Double {
        withUnsafeBytes(of: doublePowers) { $0.load(fromByteOffset: n &* 8, as: Double.self) }
    }

    /// `10^n` as an integer, for n in 0...18.
    @inline(__always)
    static func intPower(_ n: Int) -> Int64 {
        withUnsafeBytes(of: intPowers) { $0.load(fromByteOffset: n &* 8, as: Int64.self) }
    }

    // 10^0 ... 10^22 (23 entries), stored inline (no array, no lazy global initialization on access).
    private static let doublePowers: (
        Double, Double, Double, Double, Double, Double, Double, Double, Double, Double, Double, Double,
        Double, Double, Double, Double, Double, Double, Double, Double, Double, Double, Double
    ) = (
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
        1e18, 1e19, 1e20, 1e21, 1e22
    )

    private static let intPowers: (
        Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64,
        Int64, Int64, Int64, Int64, Int64
    ) = (
        1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000,
        10_000_000_000, 100_000_000_000, 1_000_000_000_000, 10_000_000_000_000, 100_000_000_000_000,
        1_000_000_000_000_000, 10_000_000_000_000_000, 100_000_000_000_000_000,
        1_000_000_000_000_000_000
    )

    /// The shortest decimal that reads back as `d` (the value of Ruby's `Float#to_s`), when its mantissa is
    /// below 2^50 with at most 17 fraction digits; nil otherwise (and for zero, whose sign matters).
    @inline(__always)
    init?(_ d: Double) {
        let a = d.magnitude
        guard a < ShortDecimal.readBound, a >= 1e-7 else { return nil }
        var k = 0
        while k <= 17 {
            let p = ShortDecimal.power(k)
            let s = d * p
            if s.magnitude >= ShortDecimal.readBound { return nil }
            // Round to the nearest integer (|s| < 2^50: the conversion is exact, the fraction too).
            var m = Int64(s)
            let fraction = s - Double(m)
            if fraction >= 0.5 { m &+= 1 } else if fraction <= -0.5 { m &-= 1 }
            if Double(m) / p == d {
                self.init(mantissa: m, scale: k)
                return
            }
            k &+= 1
        }
        return nil
    }

    /// An integer, when small enough.
    @inline(__always)
    init?(_ i: Int) {
        guard i > -(1 << 50), i < (1 << 50) else { return nil }
        self.init(mantissa: Int64(i), scale: 0)
    }

    /// The value as a double, correctly rounded (Ruby's `BigDecimal#to_f`); nil when that is not certain to
    /// be exact, and for zero (`BigDecimal` keeps a sign on zero, which the general path handles).
    @inline(__always)
    var doubleValue: Double? {
        guard mantissa != 0, mantissa > -ShortDecimal.exactBound, mantissa < ShortDecimal.exactBound, scale <= 22 else { return nil }
        return Double(mantissa) / ShortDecimal.power(scale)
    }

    /// Both mantissas on the larger scale, or nil on overflow.
    @inline(__always)
    private static func aligned(_ a: ShortDecimal, _ b: ShortDecimal) -> (Int64, Int64, Int)? {
        if a.scale == b.scale { return (a.mantissa, b.mantissa, a.scale) }
        if a.scale < b.scale {
            let d = b.scale &- a.scale
            guard d <= 18 else { return nil }
            let (m, o) = a.mantissa.multipliedReportingOverflow(by: intPower(d))
            return o ? nil : (m, b.mantissa, b.scale)
        }
        let d = a.scale &- b.scale
        guard d <= 18 else { return nil }
        let (m, o) = b.mantissa.multipliedReportingOverflow(by: intPower(d))
        return o ? nil : (a.mantissa, m, a.scale)
    }

    /// `a + b`, exactly.
    @inline(__always)
    func adding(_ other: ShortDecimal) -> ShortDecimal? {
        guard let (x, y, s) = ShortDecimal.aligned(self, other) else { return nil }
        let (r, o) = x.addingReportingOverflow(y)
        return o ? nil : ShortDecimal(mantissa: r, scale: s)
    }

    /// `a - b`, exactly.
    @inline(__always)
    func subtracting(_ other: ShortDecimal) -> ShortDecimal? {
        guard let (x, y, s) = ShortDecimal.aligned(self, other) else { return nil }
        let (r, o) = x.subtractingReportingOverflow(y)
        return o ? nil : ShortDecimal(mantissa: r, scale: s)
    }

    /// `a × b`, exactly.
    @inline(__always)
    func multiplied(by other: ShortDecimal) -> ShortDecimal? {
        let (r, o) = mantissa.multipliedReportingOverflow(by: other.mantissa)
        let s = scale &+ other.scale
        return o || s > 22 ? nil : ShortDecimal(mantissa: r, scale: s)
    }

    /// Rounded half away from zero to `places` (0...22) fraction digits (`BigDecimal#round(places)`).
    @inline(__always)
    func rounded(toPlaces places: Int) -> ShortDecimal {
        if scale <= places { return self }
        let drop = scale &- places
        if drop > 18 { return ShortDecimal(mantissa: 0, scale: places) }
        let p = ShortDecimal.intPower(drop)
        var q = mantissa / p
        let r = mantissa % p
        if r.magnitude &* 2 >= p.magnitude { q += r > 0 ? 1 : -1 }
        return ShortDecimal(mantissa: q, scale: places)
    }

    /// Appends Ruby's `Float#to_s` of `d` to `out` when `d` has a short decimal in Ruby's fixed notation
    /// (`1e-4 <= |d| < 1e15`); false (nothing appended) otherwise.
    @inline(__always)
    static func appendRubyFloat(_ d: Double, to out: inout OutputBuffer, _ decimals: inout ShortDecimalCache) -> Bool {
        guard d.magnitude >= 1e-4, d.magnitude < 1e15, let s = decimals.decimal(d) else { return false }
        s.appendFixed(to: &out)
        return true
    }

    /// Appends the digits in fixed notation with at least one fraction digit (`12.5`, `3.0`, `0.001`).
    func appendFixed(to out: inout OutputBuffer) {
        var m = mantissa.magnitude
        // Up to 20 digits, written backwards into scratch.
        var scratch: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { buf in
            var n = 0
            repeat {
                buf[31 &- n] = UInt8(truncatingIfNeeded: m % 10) &+ 0x30
                m /= 10
                n &+= 1
            } while m > 0
            if mantissa < 0 { out.append(UInt8(ascii: "-")) }
            if scale == 0 {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[(32 &- n)...]))
                out.append(UInt8(ascii: "."))
                out.append(UInt8(ascii: "0"))
            } else if n > scale {
                let intDigits = n &- scale
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[(32 &- n)..<(32 &- n &+ intDigits)]))
                out.append(UInt8(ascii: "."))
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[(32 &- scale)...]))
            } else {
                out.append(UInt8(ascii: "0"))
                out.append(UInt8(ascii: "."))
                for _ in 0..<(scale &- n) { out.append(UInt8(ascii: "0")) }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[(32 &- n)...]))
            }
        }
    }
}
