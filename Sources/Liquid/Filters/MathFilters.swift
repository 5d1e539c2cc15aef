/// The math filters. Operands go through `Utils.to_number` (`rubyNumber`): integers stay integers, floats
/// and decimal strings compute as exact decimals (Ruby's `BigDecimal`) and come back as floats.
enum MathFilters {
    static let all: [String: LiquidFilterFunction] = [
        "abs": abs, "plus": plus, "minus": minus, "times": times, "divided_by": dividedBy, "modulo": modulo,
        "round": round, "ceil": ceil, "floor": floor, "at_least": atLeast, "at_most": atMost,
    ]

    /// `abs`.
    static let abs: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        switch input.rubyNumber {
        case .int(let i):
            return i == .min ? .double(-Double(i)) : .int(Swift.abs(i))
        case .decimal(let d): return .double(Swift.abs(d.doubleValue))
        case .float(let f): return .double(Swift.abs(f))
        }
    }

    /// The operand as a ``ShortDecimal`` (the exact fast path), when it is a small integer or a float with a
    /// short decimal.
    @inline(__always)
    static func short(_ value: LiquidValue) -> ShortDecimal? {
        short(value, reading: ShortDecimal.init)
    }

    /// ``short(_:)`` with doubles read by `read`.
    @inline(__always)
    static func short(_ value: LiquidValue, reading read: (Double) -> ShortDecimal?) -> ShortDecimal? {
        switch value {
        case .int(let i): ShortDecimal(i)
        case .double(let d): read(d)
        default: nil
        }
    }

    /// `plus: n`.
    static let plus: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        if case .int(let a) = input, case .int(let b) = args.value(0) {
            let (r, o) = a.addingReportingOverflow(b)
            if !o { return .int(r) }
        }
        if let x = short(input), let y = short(args.value(0)), let r = x.adding(y)?.doubleValue { return .double(r) }
        return (input.rubyNumber + args.value(0).rubyNumber).liquidValue
    }

    /// `minus: n`.
    static let minus: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        if case .int(let a) = input, case .int(let b) = args.value(0) {
            let (r, o) = a.subtractingReportingOverflow(b)
            if !o { return .int(r) }
        }
        if let x = short(input), let y = short(args.value(0)), let r = x.subtracting(y)?.doubleValue {
            return .double(r)
        }
        return (input.rubyNumber - args.value(0).rubyNumber).liquidValue
    }

    /// `times: n`.
    static let times: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        if case .int(let a) = input, case .int(let b) = args.value(0) {
            let (r, o) = a.multipliedReportingOverflow(by: b)
            if !o { return .int(r) }
        }
        if let x = short(input), let y = short(args.value(0)), let r = x.multiplied(by: y)?.doubleValue {
            return .double(r)
        }
        return (input.rubyNumber * args.value(0).rubyNumber).liquidValue
    }

    /// `divided_by: n`: integer division floors (Ruby's `Integer#/`); dividing an integer by zero raises
    /// "divided by 0"; a float divided by zero is `Infinity`/`NaN` (Ruby's `BigDecimal`).
    static let dividedBy: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        return try input.rubyNumber.divided(by: args.value(0).rubyNumber).liquidValue
    }

    /// `modulo: n`: the result has the sign of the divisor (Ruby's `%`); a zero divisor raises.
    static let modulo: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        return try input.rubyNumber.modulo(args.value(0).rubyNumber).liquidValue
    }

    /// The integer Ruby uses as a rounding precision (`Integer#round(BigDecimal)` truncates).
    static func precision(_ n: RubyNumber) -> Int {
        switch n {
        case .int(let i): return i
        case .decimal(let d):
            return d.rounded(toPlaces: 0, rule: .towardZero).intValue ?? (d.mantissa < 0 ? Int.min : Int.max)
        case .float(let f):
            if f.isNaN { return 0 }
            return f >= 9.0e18 ? Int.max : (f <= -9.0e18 ? Int.min : Int(f))
        }
    }

    static func domainError(_ f: Double) -> LiquidFilterError {
        LiquidFilterError(
            .invalid, f.isNaN ? "Computation results in 'NaN' (Not a Number)"
                : (f < 0 ? "Computation results in '-Infinity'" : "Computation results in 'Infinity'"))
    }

    /// An integral decimal as an `Int`, or a float when it does not fit (Ruby would print the bignum).
    static func integral(_ d: RubyDecimal) -> LiquidValue {
        if let i = d.intValue { return .int(i) }
        return .double(d.doubleValue)
    }

    /// `round: places = 0`: half away from zero on the decimal value (`BigDecimal#round`); an integer result
    /// when `places <= 0`.
    static let round: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 0, max: 1)
        // Fast path: a float with a short decimal, rounded to 0...22 places.
        if case .double(let d) = input, let x = ShortDecimal(d) {
            var places: Int? = 0
            if let p = args[0] {
                if case .int(let i) = p, i >= 0, i <= 22 { places = i } else { places = nil }
            }
            if let places {
                let r = x.rounded(toPlaces: places)
                if places == 0 { return .int(Int(r.mantissa)) }
                if let v = r.doubleValue { return .double(v) }
            }
        }
        let number = input.rubyNumber
        let places = args[0].map { precision($0.rubyNumber) } ?? 0
        switch number {
        case .int(let i):
            if places >= 0 { return .int(i) }
            let r = RubyDecimal(mantissa: Int128(i), exponent: 0).rounded(toPlaces: max(places, -100))
            return integral(r)
        case .decimal(let d):
            let r = d.rounded(toPlaces: max(min(places, 1000), -1000))
            return places <= 0 ? integral(r) : .double(r.doubleValue)
        case .float(let f):
            if !f.isFinite {
                if places > 0 { return .double(f) }
                throw domainError(f)
            }
            // Beyond the exact range: round in binary.
            if places <= 0 {
                let r = f.rounded(.toNearestOrAwayFromZero)
                return Swift.abs(r) < 9.2e18 ? .int(Int(r)) : .double(r)
            }
            return .double(f)
        }
    }

    /// `ceil`: the smallest integer not below the number.
    static let ceil: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return try roundToInteger(input.rubyNumber, rule: .up)
    }

    /// `floor`: the largest integer not above the number.
    static let floor: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return try roundToInteger(input.rubyNumber, rule: .down)
    }

    static func roundToInteger(_ n: RubyNumber, rule: FloatingPointRoundingRule) throws(LiquidFilterError) -> LiquidValue {
        switch n {
        case .int(let i): return .int(i)
        case .decimal(let d): return integral(d.rounded(toPlaces: 0, rule: rule))
        case .float(let f):
            guard f.isFinite else { throw domainError(f) }
            let r = f.rounded(rule)
            return Swift.abs(r) < 9.2e18 ? .int(Int(r)) : .double(r)
        }
    }

    /// `at_least: n`: the larger of the input and `n`.
    static let atLeast: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        let value = input.rubyNumber, bound = args.value(0).rubyNumber
        return ((RubyNumber.compare(bound, value) ?? 0) > 0 ? bound : value).liquidValue
    }

    /// `at_most: n`: the smaller of the input and `n`.
    static let atMost: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        let value = input.rubyNumber, bound = args.value(0).rubyNumber
        return ((RubyNumber.compare(bound, value) ?? 0) < 0 ? bound : value).liquidValue
    }
}
