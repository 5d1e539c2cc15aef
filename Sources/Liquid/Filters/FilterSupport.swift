/// Shared machinery of the standard filters: Ruby's argument-count check, Liquid's `InputIterator`, Ruby's
/// `item[property]`, and the equality/ordering the array filters use.

/// A filter's arguments as Ruby receives them: the positional ones, then (when any keyword argument was
/// given) one more, a hash of the keyword arguments, as Ruby Liquid passes them.
struct FilterArgs {
    let positional: [LiquidValue]
    let keywordHash: LiquidValue?
    /// How many arguments Ruby sees (not counting the input).
    let count: Int

    /// Checks the count against `min...max` (the filter method's arity without its input) and raises Ruby's
    /// `wrong number of arguments (given N, expected M)` otherwise (N and M count the input, as Ruby does).
    @inline(__always)
    init(_ arguments: LiquidFilterArguments, min: Int, max: Int) throws(LiquidFilterError) {
        positional = arguments.positional
        if arguments.keyword.isEmpty {
            keywordHash = nil
            count = positional.count
        } else {
            var object = LiquidObject()
            for (name, value) in arguments.keyword { object[name] = value }
            keywordHash = .object(object)
            count = positional.count + 1
        }
        if count < min || count > max {
            throw FilterArgs.arityError(given: count, min: min, max: max)
        }
    }

    static func arityError(given: Int, min: Int, max: Int) -> LiquidFilterError {
        let expected = min == max ? "\(min + 1)" : "\(min + 1)..\(max + 1)"
        return LiquidFilterError(.argument, "wrong number of arguments (given \(given + 1), expected \(expected))")
    }

    /// The argument at `index`, or nil when not given.
    @inline(__always)
    subscript(_ index: Int) -> LiquidValue? {
        if index < positional.count { return positional[index] }
        if index == positional.count { return keywordHash }
        return nil
    }

    /// The argument at `index`, or `.nil` when not given (Ruby's default `nil`).
    @inline(__always)
    func value(_ index: Int) -> LiquidValue { self[index] ?? .nil }
}

/// Checks that a filter got no arguments besides its input.
@inline(__always)
func expectNoArguments(_ arguments: LiquidFilterArguments) throws(LiquidFilterError) {
    if !arguments.positional.isEmpty || !arguments.keyword.isEmpty {
        let given = arguments.positional.count + (arguments.keyword.isEmpty ? 0 : 1)
        throw FilterArgs.arityError(given: given, min: 0, max: 0)
    }
}

/// The largest number of elements a range is expanded to by the array filters (Ruby would try any size;
/// this bounds the work of a filter on data such as `(1..1000000000000)`).
let maxRangeExpansion = 10_000_000

/// Ruby Liquid's `InputIterator`: an array flattened (recursively), a hash as a one-element array, a range
/// as its integers, nil as empty, anything else as a one-element array.
func inputIterator(_ input: LiquidValue) throws(LiquidFilterError) -> [LiquidValue] {
    switch input {
    case .array(let a):
        for element in a {
            if case .array = element { return flattened(a) }
        }
        return a
    case .nil: return []
    case .range(let first, let last):
        if last < first { return [] }
        let (span, overflow) = last.subtractingReportingOverflow(first)
        if overflow || span >= maxRangeExpansion {
            throw LiquidFilterError(.invalid, "range too large")
        }
        var out: [LiquidValue] = []
        out.reserveCapacity(span + 1)
        for i in first...last { out.append(.int(i)) }
        return out
    default: return [input]
    }
}

/// Ruby's `Array#flatten`.
func flattened(_ a: [LiquidValue]) -> [LiquidValue] {
    var out: [LiquidValue] = []
    out.reserveCapacity(a.count)
    func add(_ values: [LiquidValue], depth: Int) {
        for v in values {
            if case .array(let inner) = v, depth < 512 {
                add(inner, depth: depth + 1)
            } else {
                out.append(v)
            }
        }
    }
    add(a, depth: 0)
    return out
}

/// The outcome of Ruby's `item[property]` inside the array filters.
enum PropertyLookup {
    /// The lookup gave a value (possibly nil).
    case value(LiquidValue)
    /// The item has no `[]` (nil, booleans, floats): Ruby raises `NoMethodError`, which the filters turn
    /// into a nil result.
    case noMethod
}

/// Ruby's `item[property]` for the values Liquid sees; raises Liquid's "cannot select the property" where
/// Ruby raises `TypeError` (e.g. an integer indexed by a string).
func rubyIndex(_ item: LiquidValue, _ property: LiquidValue) throws(LiquidFilterError) -> PropertyLookup {
    switch item {
    case .object(let o):
        if case .string(let key) = property { return .value(o[key] ?? .nil) }
        return .value(.nil)
    case .drop(let box):
        if case .nil = property { return .value(.nil) }
        return .value(box.drop.property(property.rubyToS))
    case .string(let s):
        switch property {
        case .string(let sub):
            return .value(byteFind(s, sub, from: 0) != nil ? .string(sub) : .nil)
        case .int(let i):
            return .value(rubyStringSlice(s, offset: i, length: 1, singleIndex: true))
        case .double(let d) where d.isFinite && d.magnitude < 9.0e18:
            return .value(rubyStringSlice(s, offset: Int(d), length: 1, singleIndex: true))
        default:
            throw propertyError(property)
        }
    case .int(let n):
        switch property {
        case .int(let bit):
            // Integer#[]: the bit at that position (two's complement, infinite sign extension).
            if bit < 0 { return .value(.int(0)) }
            if bit >= Int.bitWidth { return .value(.int(n < 0 ? 1 : 0)) }
            return .value(.int((n >> bit) & 1))
        case .double(let d) where d.isFinite && d.magnitude < 9.0e18:
            let bit = Int(d.rounded(.down))
            if bit < 0 { return .value(.int(0)) }
            if bit >= Int.bitWidth { return .value(.int(n < 0 ? 1 : 0)) }
            return .value(.int((n >> bit) & 1))
        default:
            throw propertyError(property)
        }
    case .array(let a):
        switch property {
        case .int(let i):
            let index = i < 0 ? a.count + i : i
            return .value(index >= 0 && index < a.count ? a[index] : .nil)
        default:
            throw propertyError(property)
        }
    default:
        return .noMethod
    }
}

func propertyError(_ property: LiquidValue) -> LiquidFilterError {
    LiquidFilterError(.argument, "cannot select the property '\(property.rubyToS)'")
}

/// Ruby's `String#[offset, length]` / `String#[index]` by characters (code points); nil when out of range.
func rubyStringSlice(_ s: String, offset: Int, length: Int, singleIndex: Bool = false) -> LiquidValue {
    if length < 0 { return .nil }
    let scalars = s.unicodeScalars
    let isASCII = s.utf8.allSatisfy { $0 < 0x80 }
    let count = isASCII ? s.utf8.count : scalars.count
    var start = offset
    if start < 0 {
        let (v, o) = start.addingReportingOverflow(count)
        if o || v < 0 { return .nil }
        start = v
    }
    if start > count || (singleIndex && start == count) { return .nil }
    let available = count - start
    let take = min(length, available)
    if isASCII {
        let u = s.utf8
        let from = u.index(u.startIndex, offsetBy: start)
        let to = u.index(from, offsetBy: take)
        return .string(String(Substring(u[from..<to])))
    }
    let from = scalars.index(scalars.startIndex, offsetBy: start)
    let to = scalars.index(from, offsetBy: take)
    return .string(String(scalars[from..<to]))
}

/// Ruby's `==` between Liquid values (integers equal floats of the same value; hashes compare by content).
func rubyEqual(_ a: LiquidValue, _ b: LiquidValue) -> Bool {
    switch (a, b) {
    case (.int(let x), .double(let y)): return Double(x) == y && y.magnitude < 9.3e18 && Int(y) == x
    case (.double(let x), .int(let y)): return Double(y) == x && x.magnitude < 9.3e18 && Int(x) == y
    case (.array(let x), .array(let y)):
        guard x.count == y.count else { return false }
        for i in x.indices where !rubyEqual(x[i], y[i]) { return false }
        return true
    case (.object(let x), .object(let y)):
        guard x.count == y.count else { return false }
        for key in x.orderedKeys {
            guard let other = y[key], let mine = x[key], rubyEqual(mine, other) else { return false }
        }
        return true
    case (.range(let f1, let l1), .range(let f2, let l2)): return f1 == f2 && l1 == l2
    default: return a == b
    }
}

/// Ruby's `a <=> b` for Liquid values; nil when Ruby gives nil (incomparable types).
func rubyCompare(_ a: LiquidValue, _ b: LiquidValue) -> Int? {
    switch (a, b) {
    case (.int(let x), .int(let y)): return x < y ? -1 : (x > y ? 1 : 0)
    case (.int, .double), (.double, .int), (.double, .double):
        return RubyNumber.compare(a.rubyNumberExact, b.rubyNumberExact)
    case (.string(let x), .string(let y)): return compareBytes(x, y)
    case (.array(let x), .array(let y)):
        for i in 0..<min(x.count, y.count) {
            guard let c = rubyCompare(x[i], y[i]) else { return nil }
            if c != 0 { return c }
        }
        return x.count < y.count ? -1 : (x.count > y.count ? 1 : 0)
    default:
        // Object#<=>: 0 when equal, else nil.
        return rubyEqual(a, b) ? 0 : nil
    }
}

extension LiquidValue {
    /// A number for exact comparison (a float compared as its binary value, not its decimal repr).
    var rubyNumberExact: RubyNumber {
        switch self {
        case .int(let i): .int(i)
        case .double(let d):
            if d == d.rounded(.towardZero), d.magnitude < 9.0e18 { .int(Int(d)) } else { .float(d) }
        default: .int(0)
        }
    }
}

/// Byte-wise comparison of two strings (Ruby's `String#<=>` on UTF-8).
func compareBytes(_ x: String, _ y: String) -> Int {
    var a = x, b = y
    return a.withUTF8 { ua in
        b.withUTF8 { ub in
            let n = min(ua.count, ub.count)
            for i in 0..<n where ua[i] != ub[i] { return ua[i] < ub[i] ? -1 : 1 }
            return ua.count < ub.count ? -1 : (ua.count > ub.count ? 1 : 0)
        }
    }
}

/// Ruby's `String#casecmp`: compares after folding ASCII letters to lower case, byte-wise.
func caseCompareBytes(_ x: String, _ y: String) -> Int {
    var a = x, b = y
    return a.withUTF8 { ua in
        b.withUTF8 { ub in
            let n = min(ua.count, ub.count)
            for i in 0..<n {
                var p = ua[i], q = ub[i]
                if p >= 65 && p <= 90 { p |= 0x20 }
                if q >= 65 && q <= 90 { q |= 0x20 }
                if p != q { return p < q ? -1 : 1 }
            }
            return ua.count < ub.count ? -1 : (ua.count > ub.count ? 1 : 0)
        }
    }
}
