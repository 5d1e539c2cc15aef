/// The last few doubles a render read as ``ShortDecimal``, by bit pattern: a price that goes through
/// `times`, `round` and the output is read once instead of three times. Reading is a pure function of the
/// bits, so a remembered result is the result.
struct ShortDecimalCache {
    private struct Slot {
        /// The double's bits; 0 (`+0.0`, which never reads as a ``ShortDecimal``) marks an empty slot.
        var bits: UInt64 = 0
        var decimal = ShortDecimal(mantissa: 0, scale: 0)
    }

    private var slots = (Slot(), Slot(), Slot(), Slot())
    /// The slot the next new value replaces (round robin).
    private var next = 0

    /// `ShortDecimal(d)`.
    @inline(__always)
    mutating func decimal(_ d: Double) -> ShortDecimal? {
        let bits = d.bitPattern
        if bits != 0 {
            if slots.0.bits == bits { return slots.0.decimal }
            if slots.1.bits == bits { return slots.1.decimal }
            if slots.2.bits == bits { return slots.2.decimal }
            if slots.3.bits == bits { return slots.3.decimal }
        }
        guard let decimal = ShortDecimal(d) else { return nil }
        let slot = Slot(bits: bits, decimal: decimal)
        switch next {
        case 0: slots.0 = slot
        case 1: slots.1 = slot
        case 2: slots.2 = slot
        default: slots.3 = slot
        }
        next = (next + 1) & 3
        return decimal
    }

    /// ``MathFilters/short(_:)``.
    @inline(__always)
    mutating func short(_ value: LiquidValue) -> ShortDecimal? {
        MathFilters.short(value) { decimal($0) }
    }
}
