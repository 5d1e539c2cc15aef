/// The string filters: case, concatenation, substitution, slicing, truncation, splitting, whitespace.
/// Inputs and arguments go through Ruby Liquid's `to_s` (`rubyToS`); characters are Unicode code points, as
/// Ruby counts them; substring search works on UTF-8 bytes (equivalent for valid UTF-8).
enum StringFilters {
    static let all: [String: LiquidFilterFunction] = [
        "downcase": downcase, "upcase": upcase, "capitalize": capitalize,
        "append": append, "prepend": prepend,
        "remove": remove, "remove_first": removeFirst, "remove_last": removeLast,
        "replace": replace, "replace_first": replaceFirst, "replace_last": replaceLast,
        "slice": slice, "truncate": truncate, "truncatewords": truncatewords, "split": split,
        "strip": strip, "lstrip": lstrip, "rstrip": rstrip,
        "strip_newlines": stripNewlines, "newline_to_br": newlineToBr,
    ]

    /// `downcase`: Ruby's `String#downcase` (full Unicode case mapping; ASCII fast path).
    static let downcase: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(mapCase(input.rubyToS, upper: false))
    }

    /// `upcase`: Ruby's `String#upcase`.
    static let upcase: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(mapCase(input.rubyToS, upper: true))
    }

    /// `capitalize`: Ruby's `String#capitalize`: the first character upper (title) case, the rest lower case.
    static let capitalize: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        let s = input.rubyToS
        if s.isEmpty { return .string(s) }
        if s.utf8.allSatisfy({ $0 < 0x80 }) {
            var first = true
            let out = String(unsafeUninitializedCapacity: s.utf8.count) { buffer in
                var n = 0
                for var c in s.utf8 {
                    if first {
                        if c >= 97 && c <= 122 { c -= 32 }
                        first = false
                    } else if c >= 65 && c <= 90 {
                        c += 32
                    }
                    buffer[n] = c
                    n += 1
                }
                return n
            }
            return .string(out)
        }
        var out = ""
        out.reserveCapacity(s.utf8.count)
        var first = true
        for scalar in s.unicodeScalars {
            if first {
                out += scalar.properties.titlecaseMapping
                first = false
            } else {
                out += scalar.properties.lowercaseMapping
            }
        }
        return .string(out)
    }

    static func mapCase(_ s: String, upper: Bool) -> String {
        let utf8 = s.utf8
        if utf8.allSatisfy({ $0 < 0x80 }) {
            let (lo, hi): (UInt8, UInt8) = upper ? (97, 122) : (65, 90)
            if !utf8.contains(where: { $0 >= lo && $0 <= hi }) { return s }
            return String(unsafeUninitializedCapacity: utf8.count) { buffer in
                var n = 0
                for c in utf8 {
                    buffer[n] = (c >= lo && c <= hi) ? c ^ 0x20 : c
                    n += 1
                }
                return n
            }
        }
        return upper ? s.uppercased() : s.lowercased()
    }

    /// `append: string`.
    static let append: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        var s = input.rubyToS
        s += args.value(0).rubyToS
        return .string(s)
    }

    /// `prepend: string`.
    static let prepend: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        var s = args.value(0).rubyToS
        s += input.rubyToS
        return .string(s)
    }

    /// `remove: string`: every occurrence removed (`gsub`).
    static let remove: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        return .string(substitute(input.rubyToS, args.value(0).rubyToS, "", global: true))
    }

    /// `remove_first: string` (`sub`).
    static let removeFirst: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        return .string(substitute(input.rubyToS, args.value(0).rubyToS, "", global: false))
    }

    /// `remove_last: string`.
    static let removeLast: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        return .string(replaceLastOccurrence(input.rubyToS, args.value(0).rubyToS, ""))
    }

    /// `replace: string, replacement = ''`: Ruby's `gsub` with a string pattern; the replacement's backslash
    /// sequences (`\0`, `\&`, `` \` ``, `\'`, `\\`, `\1`...) mean what they mean to Ruby.
    static let replace: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 2)
        let replacement = args[1].map { $0.rubyToS } ?? ""
        return .string(try substituteChecked(input.rubyToS, args.value(0).rubyToS, replacement, global: true))
    }

    /// `replace_first: string, replacement = ''` (`sub`).
    static let replaceFirst: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 2)
        let replacement = args[1].map { $0.rubyToS } ?? ""
        return .string(try substituteChecked(input.rubyToS, args.value(0).rubyToS, replacement, global: false))
    }

    /// `replace_last: string, replacement`: the last occurrence replaced literally.
    static let replaceLast: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 2, max: 2)
        return .string(replaceLastOccurrence(input.rubyToS, args.value(0).rubyToS, args.value(1).rubyToS))
    }

    /// `slice: offset, length = 1`: a substring (by characters) or a sub-array; negative offsets count from
    /// the end; out of range gives `''` / `[]`.
    static let slice: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 2)
        let offset = try args.value(0).rubyToInteger()
        var length = 1
        if let l = args[1], l.isTruthy { length = try l.rubyToInteger() }
        if case .array(let a) = input {
            if length < 0 { return .array([]) }
            var start = offset
            if start < 0 {
                let (v, o) = start.addingReportingOverflow(a.count)
                if o || v < 0 { return .array([]) }
                start = v
            }
            if start >= a.count { return .array([]) }
            let take = min(length, a.count - start)
            return .array(Array(a[start..<(start + take)]))
        }
        let result = rubyStringSlice(input.rubyToS, offset: offset, length: length)
        if case .nil = result { return .string("") }
        return result
    }

    /// `truncate: length = 50, ellipsis = "..."`: at most `length` characters including the ellipsis.
    static let truncate: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 0, max: 2)
        if case .nil = input { return .nil }
        let s = input.rubyToS
        let length = try args[0].map { v throws(LiquidFilterError) in try v.rubyToInteger() } ?? 50
        let ellipsis = args[1].map { $0.rubyToS } ?? "..."
        let ellipsisCount = characterCount(ellipsis)
        let (diff, overflow) = length.subtractingReportingOverflow(ellipsisCount)
        let keep = overflow ? 0 : max(diff, 0)
        let utf8 = s.utf8
        // Fast path: ASCII text (characters are bytes).
        if utf8.count <= length { return .string(s) }  // code points <= bytes
        if utf8.allSatisfy({ $0 < 0x80 }) {
            var out = String(Substring(utf8.prefix(keep)))
            out += ellipsis
            return .string(out)
        }
        let scalars = s.unicodeScalars
        guard scalars.count > length else { return .string(s) }
        var out = String(String.UnicodeScalarView(scalars.prefix(keep)))
        out += ellipsis
        return .string(out)
    }

    static func characterCount(_ s: String) -> Int {
        s.utf8.allSatisfy({ $0 < 0x80 }) ? s.utf8.count : s.unicodeScalars.count
    }

    /// `truncatewords: words = 15, ellipsis = "..."`: the first `words` whitespace-separated words joined by
    /// single spaces, then the ellipsis; the input unchanged when it has no more words.
    static let truncatewords: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 0, max: 2)
        if case .nil = input { return .nil }
        let s = input.rubyToS
        var words = try args[0].map { v throws(LiquidFilterError) in try v.rubyToInteger() } ?? 15
        if words <= 0 { words = 1 }
        if words >= Int(Int32.max) { return .string(s) }
        // input.split(" ", words + 1): awk-style fields; stop after words + 1.
        var fields: [Substring.UTF8View] = []
        let u = Substring(s).utf8
        var i = u.startIndex
        while i < u.endIndex {
            while i < u.endIndex, LiquidValue.isRubySpace(u[i]) { i = u.index(after: i) }
            if i == u.endIndex { break }
            if fields.count == words {
                fields.append(u[i...])  // the remainder is field words + 1
                break
            }
            var j = i
            while j < u.endIndex, !LiquidValue.isRubySpace(u[j]) { j = u.index(after: j) }
            fields.append(u[i..<j])
            i = j
        }
        if fields.count <= words { return .string(s) }
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for (n, f) in fields.prefix(words).enumerated() {
            if n > 0 { out += " " }
            out += Substring(f)
        }
        out += args[1].map { $0.rubyToS } ?? "..."
        return .string(out)
    }

    /// `split: separator`: Ruby's `String#split` with a string: `" "` splits on runs of whitespace, `""`
    /// into characters; trailing empty fields are dropped; an empty input gives `[]`.
    static let split: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        return .array(rubySplit(input.rubyToS, args.value(0).rubyToS))
    }

    static func rubySplit(_ s: String, _ separator: String) -> [LiquidValue] {
        if s.isEmpty { return [] }
        var out: [LiquidValue] = []
        let u = Substring(s).utf8
        if separator == " " {
            var i = u.startIndex
            while i < u.endIndex {
                while i < u.endIndex, LiquidValue.isRubySpace(u[i]) { i = u.index(after: i) }
                if i == u.endIndex { break }
                var j = i
                while j < u.endIndex, !LiquidValue.isRubySpace(u[j]) { j = u.index(after: j) }
                out.append(.string(String(Substring(u[i..<j]))))
                i = j
            }
            return out
        }
        if separator.isEmpty {
            out.reserveCapacity(s.utf8.count)
            for scalar in s.unicodeScalars { out.append(.string(String(scalar))) }
            return out
        }
        var start = 0
        let sepCount = separator.utf8.count
        var position = 0
        while let found = byteFind(s, separator, from: position) {
            out.append(.string(String(Substring(u.dropFirst(start).prefix(found - start)))))
            start = found + sepCount
            position = start
        }
        out.append(.string(String(Substring(u.dropFirst(start)))))
        while let last = out.last, case .string(let t) = last, t.isEmpty { out.removeLast() }
        return out
    }

    /// `strip`: whitespace and NUL removed at both ends (Ruby's `String#strip`).
    static let strip: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(stripped(input.rubyToS, leading: true, trailing: true))
    }

    /// `lstrip`: leading whitespace removed.
    static let lstrip: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(stripped(input.rubyToS, leading: true, trailing: false))
    }

    /// `rstrip`: trailing whitespace and NUL removed.
    static let rstrip: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(stripped(input.rubyToS, leading: false, trailing: true))
    }

    static func stripped(_ s: String, leading: Bool, trailing: Bool) -> String {
        let u = Substring(s).utf8
        var start = u.startIndex, end = u.endIndex
        func isStrip(_ c: UInt8) -> Bool { c == 0 || LiquidValue.isRubySpace(c) }
        if leading { while start < end, isStrip(u[start]) { start = u.index(after: start) } }
        if trailing {
            while end > start {
                let before = u.index(before: end)
                guard isStrip(u[before]) else { break }
                end = before
            }
        }
        if start == u.startIndex && end == u.endIndex { return s }
        return String(Substring(u[start..<end]))
    }

    /// `strip_newlines`: every `\n` and `\r\n` removed.
    static let stripNewlines: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(replacingNewlines(input.rubyToS, with: ""))
    }

    /// `newline_to_br`: every `\n` and `\r\n` becomes `<br />\n`.
    static let newlineToBr: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(replacingNewlines(input.rubyToS, with: "<br />\n"))
    }

    static func replacingNewlines(_ s: String, with replacement: String) -> String {
        let u = s.utf8
        guard u.contains(10) else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(u.count + 8)
        var pendingCR = false
        for c in u {
            if pendingCR {
                pendingCR = false
                if c == 10 {
                    out.append(contentsOf: replacement.utf8)
                    continue
                }
                out.append(13)
            }
            if c == 13 {
                pendingCR = true
            } else if c == 10 {
                out.append(contentsOf: replacement.utf8)
            } else {
                out.append(c)
            }
        }
        if pendingCR { out.append(13) }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Substitution

    /// A piece of a Ruby replacement string.
    enum ReplacementPart {
        case literal([UInt8])
        case match, preMatch, postMatch
    }

    /// Parses Ruby's replacement escapes; throws where Ruby raises (`\k<name>` with no such group).
    static func replacementParts(_ r: String) throws(LiquidFilterError) -> [ReplacementPart] {
        let b = Array(r.utf8)
        var parts: [ReplacementPart] = []
        var literal: [UInt8] = []
        var i = 0
        func flush() {
            if !literal.isEmpty {
                parts.append(.literal(literal))
                literal.removeAll()
            }
        }
        while i < b.count {
            let c = b[i]
            guard c == UInt8(ascii: "\\"), i + 1 < b.count else {
                literal.append(c)
                i += 1
                continue
            }
            let n = b[i + 1]
            switch n {
            case UInt8(ascii: "0"), UInt8(ascii: "&"): flush(); parts.append(.match)
            case UInt8(ascii: "`"): flush(); parts.append(.preMatch)
            case UInt8(ascii: "'"): flush(); parts.append(.postMatch)
            case UInt8(ascii: "1")...UInt8(ascii: "9"): break  // no such group: empty
            case UInt8(ascii: "\\"): literal.append(n)
            case UInt8(ascii: "k"):
                if i + 2 < b.count, b[i + 2] == UInt8(ascii: "<"), b[(i + 3)...].contains(UInt8(ascii: ">")) {
                    throw LiquidFilterError(.invalid, "internal")
                }
                literal.append(c)
                literal.append(n)
            default:
                literal.append(c)
                literal.append(n)
            }
            i += 2
        }
        flush()
        return parts
    }

    static func substituteChecked(
        _ s: String, _ pattern: String, _ replacement: String, global: Bool
    ) throws(LiquidFilterError) -> String {
        if !replacement.utf8.contains(UInt8(ascii: "\\")) {
            return substitute(s, pattern, replacement, global: global)
        }
        return substitute(s, pattern, parts: try replacementParts(replacement), global: global)
    }

    /// `gsub`/`sub` with a literal replacement (no backslash sequences).
    static func substitute(_ s: String, _ pattern: String, _ replacement: String, global: Bool) -> String {
        substitute(s, pattern, parts: replacement.isEmpty ? [] : [.literal(Array(replacement.utf8))], global: global)
    }

    static func substitute(_ s: String, _ pattern: String, parts: [ReplacementPart], global: Bool) -> String {
        let input = Array(s.utf8)
        let p = Array(pattern.utf8)
        // Match positions (byte offsets).
        var matches: [Int] = []
        if p.isEmpty {
            // An empty pattern matches before every character and at the end.
            var i = 0
            while i <= input.count {
                matches.append(i)
                if !global { break }
                if i == input.count { break }
                i += utf8Length(input[i])
            }
        } else {
            var from = 0
            while let found = byteFind(input, p, from: from) {
                matches.append(found)
                if !global { break }
                from = found + p.count
            }
        }
        if matches.isEmpty { return s }
        var out: [UInt8] = []
        out.reserveCapacity(input.count + matches.count * 8)
        var last = 0
        for m in matches {
            out.append(contentsOf: input[last..<m])
            let end = m + p.count
            for part in parts {
                switch part {
                case .literal(let bytes): out.append(contentsOf: bytes)
                case .match: out.append(contentsOf: p)
                case .preMatch: out.append(contentsOf: input[0..<m])
                case .postMatch: out.append(contentsOf: input[end...])
                }
            }
            last = end
        }
        out.append(contentsOf: input[last...])
        return String(decoding: out, as: UTF8.self)
    }

    static func utf8Length(_ lead: UInt8) -> Int {
        lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
    }

    /// `replace_last`: Ruby's `rindex` then `[]=` (no backslash sequences).
    static func replaceLastOccurrence(_ s: String, _ pattern: String, _ replacement: String) -> String {
        let input = Array(s.utf8)
        let p = Array(pattern.utf8)
        guard let at = byteFindLast(input, p) else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(input.count + replacement.utf8.count)
        out.append(contentsOf: input[0..<at])
        out.append(contentsOf: replacement.utf8)
        out.append(contentsOf: input[(at + p.count)...])
        return String(decoding: out, as: UTF8.self)
    }
}

/// The byte offset of the first occurrence of `needle` in `haystack` at or after `from`.
func byteFind(_ haystack: [UInt8], _ needle: [UInt8], from: Int) -> Int? {
    let n = needle.count, h = haystack.count
    if n == 0 { return from <= h ? from : nil }
    if n > h { return nil }
    let first = needle[0]
    var i = from
    let lastStart = h - n
    while i <= lastStart {
        if haystack[i] == first {
            var k = 1
            while k < n && haystack[i + k] == needle[k] { k += 1 }
            if k == n { return i }
        }
        i += 1
    }
    return nil
}

/// `byteFind` on strings.
func byteFind(_ haystack: String, _ needle: String, from: Int) -> Int? {
    var h = haystack, n = needle
    return h.withUTF8 { hb in
        n.withUTF8 { nb -> Int? in
            let nc = nb.count, hc = hb.count
            if nc == 0 { return from <= hc ? from : nil }
            if nc > hc { return nil }
            let first = nb[0]
            var i = from
            while i <= hc - nc {
                if hb[i] == first {
                    var k = 1
                    while k < nc && hb[i + k] == nb[k] { k += 1 }
                    if k == nc { return i }
                }
                i += 1
            }
            return nil
        }
    }
}

/// The byte offset of the last occurrence (Ruby's `rindex`; an empty needle is found at the end).
func byteFindLast(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
    let n = needle.count, h = haystack.count
    if n > h { return nil }
    var i = h - n
    while i >= 0 {
        var k = 0
        while k < n && haystack[i + k] == needle[k] { k += 1 }
        if k == n { return i }
        i -= 1
    }
    return nil
}
