/// Ruby's equality, ordering, `contains`, `blank?` and `empty?` as Liquid conditions use them.
///
/// These are the semantics of Shopify Liquid's `Condition`: `1 == 1.0` is true (Ruby numeric equality),
/// `'1' == 1` is false, arrays and hashes compare element by element, and ordering is defined only between
/// numbers and between strings (bytewise).
extension LiquidValue {
    /// Ruby's `==`: numbers compare by value across `Int` and `Double`; strings, arrays, hashes and ranges
    /// compare structurally; drops by identity; values of different kinds are unequal.
    public func rubyEquals(_ other: LiquidValue) -> Bool {
        // The common cases first, one value at a time (the switch over the pair copies both values).
        if case .string(let a) = self, case .string(let b) = other { return a == b }
        if case .int(let a) = self, case .int(let b) = other { return a == b }
        switch (self, other) {
        case (.nil, .nil): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.int(let a), .double(let b)): return Double(a) == b
        case (.double(let a), .int(let b)): return a == Double(b)
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            for i in a.indices where !a[i].rubyEquals(b[i]) { return false }
            return true
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for key in a.orderedKeys {
                guard let l = a[key], let r = b[key], l.rubyEquals(r) else { return false }
            }
            return true
        case (.range(let f1, let l1), .range(let f2, let l2)): return f1 == f2 && l1 == l2
        case (.drop(let a), .drop(let b)): return a === b
        default: return false
        }
    }

    /// Ruby's `<=>`: the order of two numbers or two strings (bytewise), `nil` when Ruby has no order for
    /// the pair (Ruby then raises "comparison of X with Y failed" in `sort`, and `<` in a condition is false
    /// or an error, see ``rubyLessThan(_:)``).
    public func rubyCompare(_ other: LiquidValue) -> Int? {
        switch (self, other) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.int, .double), (.double, .int), (.double, .double):
            guard let a = numericDouble, let b = other.numericDouble, !a.isNaN, !b.isNaN else { return nil }
            return a < b ? -1 : (a == b ? 0 : 1)
        case (.string(let a), .string(let b)):
            if a == b { return 0 }
            var ia = a.utf8.makeIterator()
            var ib = b.utf8.makeIterator()
            while true {
                switch (ia.next(), ib.next()) {
                case (nil, nil): return 0
                case (nil, _): return -1
                case (_, nil): return 1
                case (let x?, let y?): if x != y { return x < y ? -1 : 1 }
                }
            }
        case (.array(let a), .array(let b)):
            for i in 0..<Swift.min(a.count, b.count) {
                guard let c = a[i].rubyCompare(b[i]) else { return nil }
                if c != 0 { return c }
            }
            return a.count < b.count ? -1 : (a.count == b.count ? 0 : 1)
        case (.nil, .nil): return 0
        case (.bool(let a), .bool(let b)): return a == b ? 0 : nil
        default: return nil
        }
    }

    /// The value as a `Double` when it is a number.
    @inlinable var numericDouble: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// Ruby's class name of the value, as error messages print it (`Integer`, `String`, ...).
    public var rubyClassName: String {
        switch self {
        case .nil: return "NilClass"
        case .bool(let b): return b ? "TrueClass" : "FalseClass"
        case .int: return "Integer"
        case .double: return "Float"
        case .string: return "String"
        case .array: return "Array"
        case .object: return "Hash"
        case .range: return "Range"
        case .drop: return "Liquid::Drop"
        }
    }

    /// How a relational operator (`<`, `<=`, `>`, `>=`) in a condition compares two values: `nil` when
    /// Ruby's operator does not apply (then the condition is false), a thrown message when Ruby raises
    /// `comparison of String with 1 failed` (a number against a string).
    /// - Returns: the sign of the comparison, or `nil` for "not comparable, condition is false".
    public func rubyRelationalOrder(_ other: LiquidValue) throws(LiquidError) -> Int? {
        if case .int(let a) = self, case .int(let b) = other { return a < b ? -1 : (a == b ? 0 : 1) }
        switch (self, other) {
        case (.int, .int), (.int, .double), (.double, .int), (.double, .double), (.string, .string):
            return rubyCompare(other)
        case (.string, .int), (.string, .double):
            throw LiquidError(.argument, "comparison of String with \(LiquidValue.rubyInspect(other)) failed")
        case (.int, .string), (.double, .string):
            throw LiquidError(.argument, "comparison of \(rubyClassName) with String failed")
        default:
            return nil
        }
    }

    /// Liquid's `contains`: substring for a string (the right side converted with `to_s`), membership (Ruby
    /// `==`) for an array, key presence for a hash, inclusion for a range; false when either side is `nil`
    /// or `false`.
    public func rubyContains(_ other: LiquidValue) -> Bool {
        guard isTruthy, other.isTruthy else { return false }
        switch self {
        case .string(let s):
            let needle: String
            switch other {
            case .array, .object: needle = LiquidValue.rubyInspect(other)
            default: needle = other.rubyString
            }
            return needle.isEmpty || LiquidValue.byteSearch(s, needle) != nil
        case .array(let a):
            return a.contains { $0.rubyEquals(other) }
        case .object(let o):
            if case .string(let key) = other { return o[key] != nil }
            return false
        case .range(let first, let last):
            guard let d = other.numericDouble else { return false }
            return d >= Double(first) && d <= Double(last)
        default:
            return false
        }
    }

    /// The byte offset of the first occurrence of `needle` in `haystack`.
    static func byteSearch(_ haystack: String, _ needle: String) -> Int? {
        let h = Array(haystack.utf8), n = Array(needle.utf8)
        if n.isEmpty { return 0 }
        if n.count > h.count { return nil }
        let first = n[0]
        var i = 0
        let end = h.count - n.count
        outer: while i <= end {
            if h[i] == first {
                var j = 1
                while j < n.count {
                    if h[i + j] != n[j] {
                        i += 1
                        continue outer
                    }
                    j += 1
                }
                return i
            }
            i += 1
        }
        return nil
    }

    /// Liquid's `blank?`: `nil`, `false`, an empty or whitespace-only string, an empty array or hash.
    public var isBlank: Bool {
        switch self {
        case .nil: return true
        case .bool(let b): return !b
        case .string(let s):
            for b in s.utf8 where !(b == 32 || (b >= 9 && b <= 13)) { return false }
            return true
        case .array(let a): return a.isEmpty
        case .object(let o): return o.count == 0
        default: return false
        }
    }

    /// Liquid's `empty?`: an empty string, array or hash (`nil` and `false` are not empty).
    public var isEmptyCollection: Bool {
        switch self {
        case .string(let s): return s.isEmpty
        case .array(let a): return a.isEmpty
        case .object(let o): return o.count == 0
        default: return false
        }
    }
}
