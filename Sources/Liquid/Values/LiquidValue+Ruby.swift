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
    /// decimal exponent is in -4...16, else `1.0e+20` / `1.0e-05`; `Infinity`, `-Infinity`, `NaN`.
    public static func rubyFloatString(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
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
        if decpt < -3 || decpt > 16 {
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
        switch value {
        case .nil: return "nil"
        case .string(let s):
            var out = "\""
            for ch in s.unicodeScalars {
                switch ch {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                default: out.unicodeScalars.append(ch)
                }
            }
            return out + "\""
        case .array(let a): return "[" + a.map(rubyInspect).joined(separator: ", ") + "]"
        case .object(let o):
            return "{" + o.pairs.map { rubyInspect(.string($0.key)) + "=>" + rubyInspect($0.value) }
                .joined(separator: ", ") + "}"
        default: return value.rubyString
        }
    }
}
