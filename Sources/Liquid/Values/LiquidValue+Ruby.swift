/// Conversions with Ruby's semantics, shared by the renderer and the filters.
extension LiquidValue {
    /// The text Ruby Liquid outputs for this value (`to_s`, arrays joined without separator, nil empty).
    public var rubyString: String {
        switch self {
        case .nil: return ""
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return LiquidValue.rubyFloatString(d)
        case .string(let s): return s
        case .array(let a):
            var out = ""
            for element in a { out += element.rubyString }
            return out
        case .object(let o): return LiquidValue.rubyInspect(.object(o))
        case .range(let first, let last): return "\(first)..\(last)"
        case .drop(let box): return box.drop.displayString
        }
    }

    /// Ruby's `Float#to_s`: shortest round-trip digits; fixed notation with at least one decimal when the
    /// value is in 1e-4 ..< 1e15 (`0.0001`, `999999999999999.0`) or has digits after the point
    /// (`1000000000000344.2`), else `1.0e+15` / `1.0e-05`; `Infinity`, `-Infinity`, `NaN`.
    public static func rubyFloatString(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        var short = OutputBuffer(capacity: 24)
        var decimals = ShortDecimalCache()
        if ShortDecimal.appendRubyFloat(d, to: &short, &decimals) { return short.string }
        // Swift's description gives the shortest round-trip digits; take digits and exponent from it.
        let text = "\(d.magnitude)"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...])!
        }
        var digits = ""
        var pointPosition = 0  // digits before the point in `mantissa`
        var seenPoint = false
        for ch in mantissa {
            if ch == "." {
                seenPoint = true
                continue
            }
            digits.append(ch)
            if !seenPoint { pointPosition += 1 }
        }
        // Strip leading zeros (adjusting the point) and trailing zeros.
        while digits.count > 1, digits.first == "0" {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        let decpt = pointPosition + exponent  // value = 0.DIGITS x 10^decpt
        let sign = d < 0 ? "-" : ""
        if decpt < -3 || (decpt > 15 && decpt >= digits.count) {
            var out = sign + String(digits.first!) + "."
            out += digits.count > 1 ? String(digits.dropFirst()) : "0"
            let e = decpt - 1
            out += e < 0 ? "e-" : "e+"
            let magnitude = String(abs(e))
            out += magnitude.count < 2 ? "0" + magnitude : magnitude
            return out
        }
        if decpt <= 0 {
            return sign + "0." + String(repeating: "0", count: -decpt) + digits
        }
        if decpt >= digits.count {
            return sign + digits + String(repeating: "0", count: decpt - digits.count) + ".0"
        }
        let split = digits.index(digits.startIndex, offsetBy: decpt)
        return sign + digits[..<split] + "." + digits[split...]
    }

    /// Ruby's `inspect` of the value (how a hash prints: `{"a"=>1, "b"=>nil}`).
    public static func rubyInspect(_ value: LiquidValue) -> String {
        var out = ""
        appendInspect(value, to: &out)
        return out
    }

    /// Appends Ruby's `inspect` of `value` to `out`.
    static func appendInspect(_ value: LiquidValue, to out: inout String) {
        switch value {
        case .nil: out += "nil"
        case .string(let s): appendInspect(string: s, to: &out)
        case .array(let a):
            out += "["
            var first = true
            for element in a {
                if !first { out += ", " }
                first = false
                appendInspect(element, to: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            var first = true
            for key in o.orderedKeys {
                if !first { out += ", " }
                first = false
                appendInspect(string: key, to: &out)
                out += "=>"
                appendInspect(o[key] ?? .nil, to: &out)
            }
            out += "}"
        default: out += value.rubyString
        }
    }

    /// Ruby's `String#inspect` (UTF-8): quotes, backslash escapes, `\u0001` for control characters.
    static func appendInspect(string s: String, to out: inout String) {
        out += "\""
        var previous: Unicode.Scalar = " "
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\u{1B}": out += "\\e"
            case "\u{0C}": out += "\\f"
            case "\u{0B}": out += "\\v"
            case "\u{08}": out += "\\b"
            case "\u{07}": out += "\\a"
            case "{", "$", "@":
                if previous == "#" {
                    // `#{`, `#$`, `#@` would interpolate: Ruby escapes the `#`.
                    out.unicodeScalars.removeLast()
                    out += "\\#"
                }
                out.unicodeScalars.append(ch)
            default:
                if ch.value < 0x20 || (ch.value >= 0x7F && ch.value < 0xA0) {
                    let hex = String(ch.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(ch)
                }
            }
            previous = ch
        }
        out += "\""
    }

    /// Ruby Liquid's `Utils.to_s` (what string filters apply to their input and arguments): like `rubyString`
    /// except that arrays print as Ruby's `inspect` (`["a", 1, nil]`) and nil is empty.
    @inlinable public var rubyToS: String {
        if case .string(let s) = self { return s }
        return rubyToSSlow
    }

    @usableFromInline var rubyToSSlow: String {
        switch self {
        case .array, .object: return LiquidValue.rubyInspect(self)
        default: return rubyString
        }
    }
}

/// Number coercion as Ruby Liquid's `Utils` does it (`to_number`, `to_integer`) and Ruby's `String#to_i`.
extension LiquidValue {
    /// Ruby Liquid's `Utils.to_number`: integers as they are; a float as `BigDecimal(float.to_s)`; a string
    /// matching `/\A-?\d+\.\d+\z/` (after `strip`) as `BigDecimal`, any other string by `String#to_i`;
    /// anything else 0.
    var rubyNumber: RubyNumber {
        switch self {
        case .int(let i): return .int(i)
        case .double(let d):
            if let decimal = RubyDecimal(d) { return .decimal(decimal) }
            return .float(d)
        case .string(let s): return LiquidValue.rubyNumber(parsing: s)
        default: return .int(0)
        }
    }

    static func isRubySpace(_ c: UInt8) -> Bool {
        c == 0x20 || (c >= 0x09 && c <= 0x0D)
    }

    /// `to_number` of a string.
    static func rubyNumber(parsing s: String) -> RubyNumber {
        let utf8 = s.utf8
        // strip: whitespace and NUL at both ends.
        var start = utf8.startIndex, end = utf8.endIndex
        while start < end, isRubySpace(utf8[start]) || utf8[start] == 0 { start = utf8.index(after: start) }
        while end > start {
            let before = utf8.index(before: end)
            guard isRubySpace(utf8[before]) || utf8[before] == 0 else { break }
            end = before
        }
        // /\A-?\d+\.\d+\z/
        var i = start
        if i < end, utf8[i] == UInt8(ascii: "-") { i = utf8.index(after: i) }
        var intDigits = 0, fracDigits = 0, sawPoint = false, ok = true
        while i < end {
            let c = utf8[i]
            if c >= 48 && c <= 57 {
                if sawPoint { fracDigits += 1 } else { intDigits += 1 }
            } else if c == UInt8(ascii: "."), !sawPoint {
                sawPoint = true
            } else {
                ok = false
                break
            }
            i = utf8.index(after: i)
        }
        if ok, sawPoint, intDigits > 0, fracDigits > 0 {
            let text = Substring(s).utf8[start..<end]
            if let d = RubyDecimal.parse(text) { return .decimal(d) }
            return .float(Double(String(Substring(text))) ?? 0)
        }
        return rubyToI(s)
    }

    /// Ruby's `String#to_i`: leading whitespace, an optional sign, decimal digits (single underscores
    /// between digits allowed); stops at the first other character; 0 when there are no digits. Values
    /// beyond `Int` become a `Double` (Ruby has bignums).
    static func rubyToI(_ s: String) -> RubyNumber {
        let utf8 = s.utf8
        var i = utf8.startIndex
        while i < utf8.endIndex, isRubySpace(utf8[i]) { i = utf8.index(after: i) }
        var negative = false
        if i < utf8.endIndex, utf8[i] == UInt8(ascii: "-") || utf8[i] == UInt8(ascii: "+") {
            negative = utf8[i] == UInt8(ascii: "-")
            i = utf8.index(after: i)
        }
        var value = 0
        var overflow = false
        var wide = 0.0
        var lastWasDigit = false
        while i < utf8.endIndex {
            let c = utf8[i]
            if c >= 48 && c <= 57 {
                let digit = Int(c - 48)
                wide = wide * 10 + Double(digit)
                if !overflow {
                    let (m, o1) = value.multipliedReportingOverflow(by: 10)
                    let (v, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
                    if o1 || o2 { overflow = true } else { value = v }
                }
                lastWasDigit = true
            } else if c == UInt8(ascii: "_"), lastWasDigit {
                let next = utf8.index(after: i)
                guard next < utf8.endIndex, utf8[next] >= 48, utf8[next] <= 57 else { break }
                lastWasDigit = false
            } else {
                break
            }
            i = utf8.index(after: i)
        }
        if overflow { return .float(negative ? -wide : wide) }
        return .int(value)
    }

    /// Ruby Liquid's `Utils.to_integer`: an integer as it is, else `Integer(value.to_s)` (decimal, `0x`, `0b`,
    /// `0o`/leading-zero octal, underscores, surrounding whitespace), raising "invalid integer" otherwise.
    /// Integers beyond `Int` clamp to its range (Ruby would carry a bignum).
    func rubyToInteger() throws(LiquidFilterError) -> Int {
        switch self {
        case .int(let i): return i
        case .string(let s):
            if let i = LiquidValue.rubyKernelInteger(s) { return i }
        default:
            if let i = LiquidValue.rubyKernelInteger(rubyToS) { return i }
        }
        throw LiquidFilterError(.argument, "invalid integer")
    }

    /// Ruby's `Kernel#Integer(string)`; nil when Ruby raises.
    static func rubyKernelInteger(_ s: String) -> Int? {
        let u = Array(s.utf8)
        var start = 0, end = u.count
        while start < end, isRubySpace(u[start]) { start += 1 }
        while end > start, isRubySpace(u[end - 1]) { end -= 1 }
        var i = start
        var negative = false
        if i < end, u[i] == UInt8(ascii: "-") || u[i] == UInt8(ascii: "+") {
            negative = u[i] == UInt8(ascii: "-")
            i += 1
        }
        var radix = 10
        if i + 1 < end, u[i] == UInt8(ascii: "0") {
            switch u[i + 1] | 0x20 {
            case UInt8(ascii: "x"): radix = 16; i += 2
            case UInt8(ascii: "b"): radix = 2; i += 2
            case UInt8(ascii: "o"): radix = 8; i += 2
            case UInt8(ascii: "d"): radix = 10; i += 2
            default: radix = 8; i += 1
            }
        }
        guard i < end else { return nil }
        var value = 0
        var overflow = false
        var lastWasDigit = false
        while i < end {
            let c = u[i]
            if c == UInt8(ascii: "_") {
                guard lastWasDigit, i + 1 < end else { return nil }
                lastWasDigit = false
                i += 1
                continue
            }
            let digit: Int
            switch c {
            case 48...57: digit = Int(c - 48)
            case 97...122: digit = Int(c - 97) + 10
            case 65...90: digit = Int(c - 65) + 10
            default: return nil
            }
            guard digit < radix else { return nil }
            if !overflow {
                let (m, o1) = value.multipliedReportingOverflow(by: radix)
                let (v, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
                if o1 || o2 { overflow = true } else { value = v }
            }
            lastWasDigit = true
            i += 1
        }
        guard lastWasDigit else { return nil }
        if overflow { return negative ? .min : .max }
        return value
    }
}
