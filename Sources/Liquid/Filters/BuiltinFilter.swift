/// The standard filters the renderer runs directly, without building argument arrays or calling through a
/// closure, for their common cases: strings, small integers and floats with short decimals, plain arguments.
///
/// A call is resolved to one of these at parse time only when the standard filter of that name is the one in
/// effect (no filter of the parse options overrides it) and the call has at most two positional arguments
/// and no keyword argument. Each fast path computes exactly what the general filter computes; anything else
/// (other input or argument types, non-ASCII text where characters matter, errors) returns nil / false and
/// the renderer calls the general filter.
enum BuiltinFilter: String, Sendable {
    case `default`
    case plus, minus, times, round
    case replace, append, prepend
    case capitalize, upcase, downcase, truncate
    case escape, h
    case urlEncode = "url_encode"
    case date

    /// Whether ``write(_:_:_:_:to:)`` may handle the call (a filter whose result is text).
    var writesText: Bool {
        switch self {
        case .default, .plus, .minus, .times, .round: false
        default: true
        }
    }

    // MARK: Values

    /// The result of the filter, or nil to take the general path. `scratch` is a reusable byte buffer.
    @inline(__always)
    func apply(
        _ input: LiquidValue, _ argc: Int, _ a0: LiquidValue, _ a1: LiquidValue, scratch: inout OutputBuffer,
        decimals: inout ShortDecimalCache
    ) -> LiquidValue? {
        switch self {
        case .default:
            guard argc <= 1 else { return nil }
            let useDefault: Bool
            switch input {
            case .nil: useDefault = true
            case .bool(let b): useDefault = !b
            case .string(let s): useDefault = s.isEmpty
            case .array(let a): useDefault = a.isEmpty
            case .object(let o): useDefault = o.count == 0
            default: useDefault = false
            }
            if !useDefault { return input }
            return argc == 0 ? .string("") : a0
        case .plus, .minus, .times:
            guard argc == 1 else { return nil }
            return BuiltinFilter.arithmetic(self, input, a0, &decimals)
        case .round:
            guard argc <= 1 else { return nil }
            var places = 0
            if argc == 1 {
                guard case .int(let p) = a0, p >= 0, p <= 22 else { return nil }
                places = p
            }
            switch input {
            case .int: return input
            case .double(let d):
                guard let x = decimals.decimal(d) else { return nil }
                let r = x.rounded(toPlaces: places)
                if places == 0 { return .int(Int(r.mantissa)) }
                return r.doubleValue.map { .double($0) }
            default: return nil
            }
        default:
            if case .nil = input { return nil }
            if case .string(let s) = input, unchanged(s, argc, a0, a1) { return input }
            scratch.removeAll()
            guard write(input, argc, a0, a1, to: &scratch) else { return nil }
            return .string(scratch.string)
        }
    }

    /// `plus` / `minus` / `times` on two integers (no overflow) or on two short decimals.
    @inline(__always)
    static func arithmetic(_ op: BuiltinFilter, _ a: LiquidValue, _ b: LiquidValue, _ decimals: inout ShortDecimalCache) -> LiquidValue? {
        if case .int(let x) = a, case .int(let y) = b {
            let (r, o): (Int, Bool)
            switch op {
            case .plus: (r, o) = x.addingReportingOverflow(y)
            case .minus: (r, o) = x.subtractingReportingOverflow(y)
            default: (r, o) = x.multipliedReportingOverflow(by: y)
            }
            return o ? nil : .int(r)
        }
        guard let x = decimals.short(a), let y = decimals.short(b) else { return nil }
        let r: ShortDecimal?
        switch op {
        case .plus: r = x.adding(y)
        case .minus: r = x.subtracting(y)
        default: r = x.multiplied(by: y)
        }
        guard let v = r?.doubleValue else { return nil }
        return .double(v)
    }

    /// Whether a text filter would return `s` itself (then no new string is built).
    @inline(__always)
    func unchanged(_ s: String, _ argc: Int, _ a0: LiquidValue, _ a1: LiquidValue) -> Bool {
        switch self {
        case .escape, .h:
            guard argc == 0 else { return false }
            return BuiltinFilter.bytes(s) { b in !b.contains(where: BuiltinFilter.isHTMLSpecial) }
        case .urlEncode:
            guard argc == 0 else { return false }
            return BuiltinFilter.bytes(s) { b in b.allSatisfy(URLFilters.isUnreserved) }
        case .upcase, .downcase:
            guard argc == 0 else { return false }
            let (lo, hi): (UInt8, UInt8) = self == .upcase ? (97, 122) : (65, 90)
            return BuiltinFilter.bytes(s) { b in !b.contains { $0 >= 0x80 || ($0 >= lo && $0 <= hi) } }
        case .truncate:
            guard argc <= 2 else { return false }
            var length = 50
            if argc >= 1 {
                guard case .int(let n) = a0 else { return false }
                length = n
            }
            if argc == 2 {
                guard case .string = a1 else { return false }
            }
            // Characters are at most bytes: a string of no more bytes than `length` is kept whole.
            return s.utf8.count <= length
        default:
            return false
        }
    }

    // MARK: Writing

    /// Appends the filter's output (as text) to `out`; false, with nothing appended, to take the general path.
    func write(_ input: LiquidValue, _ argc: Int, _ a0: LiquidValue, _ a1: LiquidValue, to out: inout OutputBuffer) -> Bool {
        switch input {
        case .string(let text): return write(text: text, argc, a0, a1, to: &out)
        case .nil:
            // nil prints nothing after these (they return nil or "" for it).
            switch self {
            case .escape, .h, .urlEncode, .upcase, .downcase, .capitalize:
                return argc == 0
            default:
                return false
            }
        default: return false
        }
    }

    /// ``write(_:_:_:_:to:)`` of a string (passed on, not copied into a local, which would retain it).
    @inline(__always)
    private func write(text: String, _ argc: Int, _ a0: LiquidValue, _ a1: LiquidValue, to out: inout OutputBuffer) -> Bool {
        switch self {
        case .escape, .h:
            guard argc == 0 else { return false }
            BuiltinFilter.bytes(text) { BuiltinFilter.escapeHTML($0, to: &out) }
            return true
        case .urlEncode:
            guard argc == 0 else { return false }
            BuiltinFilter.bytes(text) { BuiltinFilter.urlEncode($0, to: &out) }
            return true
        case .upcase, .downcase, .capitalize:
            guard argc == 0 else { return false }
            let mode = self
            return BuiltinFilter.bytes(text) { b in
                guard BuiltinFilter.caseMappable(b, mode) else { return false }
                BuiltinFilter.mapCase(b, mode, to: &out)
                return true
            }
        case .append, .prepend:
            guard argc == 1, case .string(let other) = a0 else { return false }
            let (first, second) = self == .append ? (text, other) : (other, text)
            BuiltinFilter.bytes(first) { out.append(contentsOf: $0) }
            BuiltinFilter.bytes(second) { out.append(contentsOf: $0) }
            return true
        case .replace:
            guard argc == 1 || argc == 2, case .string(let pattern) = a0, !pattern.isEmpty else { return false }
            var replacement = ""
            if argc == 2 {
                switch a1 {
                case .string(let r): replacement = r
                case .nil: break
                default: return false
                }
            }
            return BuiltinFilter.bytes(replacement) { r in
                // Backslash sequences in the replacement mean something to Ruby's gsub.
                guard !r.contains(UInt8(ascii: "\\")) else { return false }
                BuiltinFilter.bytes(text) { s in
                    BuiltinFilter.bytes(pattern) { p in BuiltinFilter.replaceAll(s, p, r, to: &out) }
                }
                return true
            }
        case .date:
            guard argc == 1, case .string(let format) = a0, !format.isEmpty else { return false }
            return DateFilter.writeISO(text, format: format, to: &out)
        case .truncate:
            guard argc <= 2 else { return false }
            var length = 50
            if argc >= 1 {
                guard case .int(let n) = a0 else { return false }
                length = n
            }
            var ellipsis = "..."
            if argc == 2 {
                guard case .string(let e) = a1 else { return false }
                ellipsis = e
            }
            return BuiltinFilter.bytes(text) { s in
                if s.count <= length {
                    out.append(contentsOf: s)
                    return true
                }
                guard !s.contains(where: { $0 >= 0x80 }) else { return false }
                return BuiltinFilter.bytes(ellipsis) { e in
                    guard !e.contains(where: { $0 >= 0x80 }) else { return false }
                    let (diff, overflow) = length.subtractingReportingOverflow(e.count)
                    let keep = overflow ? 0 : max(diff, 0)
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: s[0..<min(keep, s.count)]))
                    out.append(contentsOf: e)
                    return true
                }
            }
        default:
            return false
        }
    }

    // MARK: Byte helpers

    /// Runs `body` on the UTF-8 bytes of `s` (in place for native strings, without copying the string, which
    /// would retain it; small strings are copied to the stack).
    @inline(__always)
    static func bytes<R>(_ s: String, _ body: (UnsafeBufferPointer<UInt8>) throws(Never) -> R) -> R {
        if let r = s.utf8.withContiguousStorageIfAvailable({ body($0) }) { return r }
        var s = s
        return s.withUTF8 { body($0) }
    }

    /// `&`, `<`, `>`, `"` or `'`: all below 64, so one bit each of a mask.
    @inline(__always)
    static func isHTMLSpecial(_ c: UInt8) -> Bool {
        let mask: UInt64 = 1 << 0x26 | 1 << 0x3C | 1 << 0x3E | 1 << 0x22 | 1 << 0x27
        return c < 64 && (mask >> UInt64(c)) & 1 != 0
    }

    /// Ruby's `CGI.escapeHTML`.
    static func escapeHTML(_ b: UnsafeBufferPointer<UInt8>, to out: inout OutputBuffer) {
        var last = 0
        for i in 0..<b.count {
            let c = b[i]
            guard isHTMLSpecial(c) else { continue }
            if i > last { out.append(contentsOf: UnsafeBufferPointer(rebasing: b[last..<i])) }
            switch c {
            case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
            case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
            case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: "&quot;".utf8)
            default: out.append(contentsOf: "&#39;".utf8)
            }
            last = i + 1
        }
        if last < b.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: b[last...])) }
    }

    /// Ruby's `CGI.escape`: bytes outside `a-zA-Z0-9_.-~` as `%XX`, space as `+`.
    static func urlEncode(_ b: UnsafeBufferPointer<UInt8>, to out: inout OutputBuffer) {
        out.append(upTo: b.count * 3) { o in
            var n = 0
            for c in b {
                if URLFilters.isUnreserved(c) {
                    o[n] = c
                    n &+= 1
                } else if c == 0x20 {
                    o[n] = UInt8(ascii: "+")
                    n &+= 1
                } else {
                    let hi = c >> 4, lo = c & 15
                    o[n] = UInt8(ascii: "%")
                    o[n &+ 1] = hi < 10 ? hi &+ 48 : hi &+ 55
                    o[n &+ 2] = lo < 10 ? lo &+ 48 : lo &+ 55
                    n &+= 3
                }
            }
            return n
        }
    }

    /// Whether ``mapCase(_:_:to:)`` handles `b`: ASCII and Latin-1 letters (U+00C0...U+00FF, `C3 xx` in
    /// UTF-8), except those whose mapping leaves Latin-1 or changes length (`ß`, `ÿ` to upper case).
    static func caseMappable(_ b: UnsafeBufferPointer<UInt8>, _ mode: BuiltinFilter) -> Bool {
        var i = 0
        while i < b.count {
            let c = b[i]
            if c < 0x80 {
                i += 1
                continue
            }
            guard c == 0xC3, i + 1 < b.count else { return false }
            let d = b[i + 1]
            guard d >= 0x80, d <= 0xBF else { return false }
            let upper = mode == .upcase || (mode == .capitalize && i == 0)
            // ß (U+00DF) upcases to "SS", ÿ (U+00FF) to U+0178.
            if upper && (d == 0x9F || d == 0xBF) { return false }
            i += 2
        }
        return true
    }

    /// `upcase`, `downcase`, `capitalize` (first character upper, the rest lower) of ASCII and Latin-1 text
    /// accepted by ``caseMappable(_:_:)``. In Latin-1, U+00C0...U+00DE (but ×) and U+00E0...U+00FE (but ÷)
    /// are upper/lower case pairs 0x20 apart, as in ASCII.
    static func mapCase(_ b: UnsafeBufferPointer<UInt8>, _ mode: BuiltinFilter, to out: inout OutputBuffer) {
        let count = b.count
        out.append(upTo: count) { o in
            var i = 0
            while i < count {
                var c = b[i]
                let upper = mode == .upcase || (mode == .capitalize && i == 0)
                if c == 0xC3 {
                    var d = b[i + 1]
                    if upper {
                        if d >= 0xA0 && d <= 0xBE && d != 0xB7 { d &-= 0x20 }
                    } else if d >= 0x80 && d <= 0x9E && d != 0x97 {
                        d &+= 0x20
                    }
                    o[i] = c
                    o[i + 1] = d
                    i += 2
                    continue
                }
                if upper {
                    if c >= 97 && c <= 122 { c &-= 32 }
                } else if c >= 65 && c <= 90 {
                    c &+= 32
                }
                o[i] = c
                i += 1
            }
            return count
        }
    }

    /// Every occurrence of the non-empty `p` in `s` replaced by `r` (Ruby's `gsub` with a plain string).
    static func replaceAll(
        _ s: UnsafeBufferPointer<UInt8>, _ p: UnsafeBufferPointer<UInt8>, _ r: UnsafeBufferPointer<UInt8>,
        to out: inout OutputBuffer
    ) {
        let n = p.count
        let first = p[0]
        var last = 0
        var i = 0
        while i + n <= s.count {
            if s[i] == first {
                var k = 1
                while k < n && s[i + k] == p[k] { k += 1 }
                if k == n {
                    if i > last { out.append(contentsOf: UnsafeBufferPointer(rebasing: s[last..<i])) }
                    out.append(contentsOf: r)
                    i += n
                    last = i
                    continue
                }
            }
            i += 1
        }
        if last < s.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: s[last...])) }
    }
}
