/// Shopify's lax parsing: hand-written equivalents of the regular expressions Ruby Liquid uses
/// (`QuotedFragment`, `VariableParser`, `TagAttributes`, `FilterParser`, ...). Garbage they do not match is
/// ignored, as in Ruby.
enum Lax {
    typealias Bytes = [UInt8]

    static func isSpace(_ b: UInt8) -> Bool { TemplateLexer.isSpace(b) }
    static func isWord(_ b: UInt8) -> Bool { TemplateLexer.isWord(b) }
    static func isQuote(_ b: UInt8) -> Bool { b == 0x22 || b == 0x27 }

    static func string(_ b: Bytes, _ r: Range<Int>) -> String { String(decoding: b[r], as: UTF8.self) }

    /// `"[^"]*"|'[^']*'` anchored at `i`: the end of the quoted string.
    static func quotedString(_ b: Bytes, _ i: Int, _ end: Int) -> Int? {
        guard i < end, isQuote(b[i]) else { return nil }
        var j = i + 1
        while j < end, b[j] != b[i] { j += 1 }
        return j < end ? j + 1 : nil
    }

    /// `QuotedFragment` anchored at `i`: `QuotedString | (?:[^\s,|'"]|QuotedString)+`.
    static func quotedFragment(_ b: Bytes, _ i: Int, _ end: Int) -> Int? {
        if let e = quotedString(b, i, end) { return e }
        var j = i
        while j < end {
            let c = b[j]
            if isQuote(c) {
                guard let e = quotedString(b, j, end) else { break }
                j = e
            } else if isSpace(c) || c == UInt8(ascii: ",") || c == UInt8(ascii: "|") {
                break
            } else {
                j += 1
            }
        }
        return j > i ? j : nil
    }

    /// `QuotedFragment+` anchored at `i`.
    static func quotedFragmentPlus(_ b: Bytes, _ i: Int, _ end: Int) -> Int? {
        guard var e = quotedFragment(b, i, end) else { return nil }
        while let next = quotedFragment(b, e, end) { e = next }
        return e
    }

    /// The first `QuotedFragment` at or after `from`.
    static func firstQuotedFragment(_ b: Bytes, _ from: Int, _ end: Int) -> Range<Int>? {
        var i = from
        while i < end {
            if let e = quotedFragment(b, i, end) { return i..<e }
            i += 1
        }
        return nil
    }

    static func trimmed(_ b: Bytes, _ r: Range<Int>) -> Range<Int> {
        var s = r.lowerBound, e = r.upperBound
        while s < e, isSpace(b[s]) || b[s] == 0 { s += 1 }
        while e > s, isSpace(b[e - 1]) || b[e - 1] == 0 { e -= 1 }
        return s..<e
    }

    /// Ruby's `Expression.parse` (and `Condition.parse_expression` when `inCondition`).
    static func expression(_ b: Bytes, _ range: Range<Int>, inCondition: Bool = false, depth: Int = 0) -> Expression {
        if inCondition {
            let text = string(b, range)
            if text == "blank" { return .blank }
            if text == "empty" { return .empty }
        }
        let r = trimmed(b, range)
        let s = r.lowerBound, e = r.upperBound
        if e - s >= 1, (b[s] == 0x22 && b[e - 1] == 0x22) || (b[s] == 0x27 && b[e - 1] == 0x27) {
            return .literal(.string(e - s >= 2 ? string(b, (s + 1)..<(e - 1)) : ""))
        }
        if let i = integer(b, r) { return .literal(i) }
        if depth < 32, let (a, z) = rangeParts(b, r) {
            return StrictExpressionParser.range(
                expression(b, a, depth: depth + 1), expression(b, z, depth: depth + 1))
        }
        if let f = float(b, r) { return .literal(f) }
        switch string(b, r) {
        case "nil", "null", "": return .nilLiteral
        case "true": return .literal(.bool(true))
        case "false": return .literal(.bool(false))
        case "blank", "empty": return .literal(.string(""))
        default: return variableLookup(b, r, depth: depth)
        }
    }

    /// `\A(-?\d+)\z`.
    static func integer(_ b: Bytes, _ r: Range<Int>) -> LiquidValue? {
        var i = r.lowerBound
        if i < r.upperBound, b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < r.upperBound else { return nil }
        for j in i..<r.upperBound where !(b[j] >= 0x30 && b[j] <= 0x39) { return nil }
        let text = string(b, r)
        if let v = Int(text) { return .int(v) }
        return .double(Double(text) ?? 0)
    }

    /// `\A(-?\d[\d\.]+)\z`, converted with Ruby's `to_f`.
    static func float(_ b: Bytes, _ r: Range<Int>) -> LiquidValue? {
        var i = r.lowerBound
        if i < r.upperBound, b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < r.upperBound, b[i] >= 0x30, b[i] <= 0x39, r.upperBound - i >= 2 else { return nil }
        for j in (i + 1)..<r.upperBound where !((b[j] >= 0x30 && b[j] <= 0x39) || b[j] == UInt8(ascii: ".")) {
            return nil
        }
        return .double(rubyToF(string(b, r)))
    }

    /// Ruby's `String#to_f` on `-?\d+(\.\d+)?...`.
    static func rubyToF(_ s: String) -> Double {
        let u = Array(s.utf8)
        var j = 0
        if j < u.count, u[j] == UInt8(ascii: "-") { j += 1 }
        while j < u.count, u[j] >= 0x30, u[j] <= 0x39 { j += 1 }
        if j + 1 < u.count, u[j] == UInt8(ascii: "."), u[j + 1] >= 0x30, u[j + 1] <= 0x39 {
            j += 1
            while j < u.count, u[j] >= 0x30, u[j] <= 0x39 { j += 1 }
        }
        return Double(String(decoding: u[0..<j], as: UTF8.self)) ?? 0
    }

    /// `\A\(\s*(?>(\S+)\s*\.\.)\s*(\S+)\s*\)\z`: the start and end markup of a range literal.
    static func rangeParts(_ b: Bytes, _ r: Range<Int>) -> (Range<Int>, Range<Int>)? {
        let s = r.lowerBound, e = r.upperBound
        guard e - s >= 2, b[s] == UInt8(ascii: "("), b[e - 1] == UInt8(ascii: ")") else { return nil }
        var i = s + 1
        while i < e, isSpace(b[i]) { i += 1 }
        var k = i
        while k < e, !isSpace(b[k]) { k += 1 }
        // Longest \S+ prefix followed by \s*\.\. (atomic: no retry after).
        var len = k - i
        var dots = -1
        while len >= 1 {
            var j = i + len
            while j < e, isSpace(b[j]) { j += 1 }
            if j + 1 < e, b[j] == UInt8(ascii: "."), b[j + 1] == UInt8(ascii: ".") {
                dots = j
                break
            }
            len -= 1
        }
        guard dots >= 0 else { return nil }
        let first = i..<(i + len)
        var a = dots + 2
        while a < e, isSpace(b[a]) { a += 1 }
        var z = e - 1  // the closing paren
        while z > a, isSpace(b[z - 1]) { z -= 1 }
        guard z > a else { return nil }
        for j in a..<z where isSpace(b[j]) { return nil }
        return (first, a..<z)
    }

    /// Ruby's `VariableLookup.parse`: scan `\[[^\]]+\]|[\w-]+\??`.
    static func variableLookup(_ b: Bytes, _ r: Range<Int>, depth: Int) -> Expression {
        var parts: [Range<Int>] = []
        var i = r.lowerBound
        let end = r.upperBound
        while i < end {
            if b[i] == UInt8(ascii: "["), i + 1 < end, b[i + 1] != UInt8(ascii: "]") {
                var j = i + 1
                while j < end, b[j] != UInt8(ascii: "]") { j += 1 }
                if j < end {
                    parts.append(i..<(j + 1))
                    i = j + 1
                    continue
                }
            }
            if isWord(b[i]) || b[i] == UInt8(ascii: "-") {
                var j = i + 1
                while j < end, isWord(b[j]) || b[j] == UInt8(ascii: "-") { j += 1 }
                if j < end, b[j] == UInt8(ascii: "?") { j += 1 }
                parts.append(i..<j)
                i = j
                continue
            }
            i += 1
        }
        guard let first = parts.first else { return .nilLiteral }
        let root: VariableLookup.Root
        if b[first.lowerBound] == UInt8(ascii: "[") {
            let inner = expression(b, (first.lowerBound + 1)..<(first.upperBound - 1), depth: depth + 1)
            if case .literal(.string(let s)) = inner { root = .name(Key(s)) } else { root = .dynamic(inner) }
        } else {
            root = .name(Key(string(b, first)))
        }
        var segments: [VariableLookup.Segment] = []
        for part in parts.dropFirst() {
            if b[part.lowerBound] == UInt8(ascii: "[") {
                let inner = expression(b, (part.lowerBound + 1)..<(part.upperBound - 1), depth: depth + 1)
                segments.append(StrictExpressionParser.segment(for: inner))
            } else {
                let name = string(b, part)
                segments.append(VariableLookup.commands.contains(name) ? .command(Key(name)) : .key(Key(name)))
            }
        }
        return .variable(VariableLookup(root: root, segments: segments, path: string(b, trimmed(b, r))))
    }

    /// `TagAttributes` scan: `(\w[\w-]*)\s*:\s*(QuotedFragment)` anywhere in the markup.
    static func tagAttributes(_ b: Bytes, from: Int = 0) -> [(String, Range<Int>)] {
        var out: [(String, Range<Int>)] = []
        var i = from
        let n = b.count
        while i < n {
            if isWord(b[i]) {
                var j = i + 1
                while j < n, isWord(b[j]) || b[j] == UInt8(ascii: "-") { j += 1 }
                var k = j
                while k < n, isSpace(b[k]) { k += 1 }
                if k < n, b[k] == UInt8(ascii: ":") {
                    k += 1
                    while k < n, isSpace(b[k]) { k += 1 }
                    if let e = quotedFragment(b, k, n) {
                        out.append((string(b, i..<j), k..<e))
                        i = e
                        continue
                    }
                }
                // Regex scanning retries at the next character.
            }
            i += 1
        }
        return out
    }

    /// `\A(\w[\w-]*)\s*:\s*(QuotedFragment)\z` on one filter argument.
    static func keywordArgument(_ b: Bytes, _ r: Range<Int>) -> (String, Range<Int>)? {
        var i = r.lowerBound
        let end = r.upperBound
        guard i < end, isWord(b[i]) else { return nil }
        i += 1
        while i < end, isWord(b[i]) || b[i] == UInt8(ascii: "-") { i += 1 }
        let name = string(b, r.lowerBound..<i)
        while i < end, isSpace(b[i]) { i += 1 }
        guard i < end, b[i] == UInt8(ascii: ":") else { return nil }
        i += 1
        while i < end, isSpace(b[i]) { i += 1 }
        guard let e = quotedFragment(b, i, end), e == end else { return nil }
        return (name, i..<e)
    }

    /// Ruby's `Variable#lax_parse`.
    static func filteredExpression(
        _ b: Bytes, resolve: (String) throws(LiquidError) -> ResolvedFilter
    ) throws(LiquidError) -> FilteredExpression {
        let n = b.count
        guard let nameRange = firstQuotedFragment(b, 0, n) else { return .empty }
        let expr = expression(b, nameRange)
        var filters: [FilterCall] = []
        var pipe = nameRange.upperBound
        while pipe < n, b[pipe] != UInt8(ascii: "|") { pipe += 1 }
        if pipe < n {
            var i = pipe + 1
            while i < n, isSpace(b[i]) { i += 1 }
            // FilterParser scan: (?:\s+|QuotedFragment|,)+
            var chunks: [Range<Int>] = []
            while i < n {
                let start = i
                while i < n {
                    if isSpace(b[i]) || b[i] == UInt8(ascii: ",") {
                        i += 1
                    } else if let e = quotedFragment(b, i, n) {
                        i = e
                    } else {
                        break
                    }
                }
                if i > start {
                    chunks.append(start..<i)
                } else {
                    i += 1
                }
            }
            for chunk in chunks {
                // filter name: first \w+ in the chunk
                var s = chunk.lowerBound
                while s < chunk.upperBound, !isWord(b[s]) { s += 1 }
                guard s < chunk.upperBound else { continue }
                var e = s
                while e < chunk.upperBound, isWord(b[e]) { e += 1 }
                let name = string(b, s..<e)
                var positional: [Expression] = []
                var keyword: [(name: String, value: Expression)] = []
                for arg in filterArguments(b, chunk) {
                    if let (k, v) = keywordArgument(b, arg) {
                        keyword.append((k, expression(b, v)))
                    } else {
                        positional.append(expression(b, arg))
                    }
                }
                filters.append(FilterCall(name: name, resolved: try resolve(name), positional: positional, keyword: keyword))
            }
        }
        return FilteredExpression(expression: expr, filters: filters)
    }

    /// `FilterArgsRegex` scan: `(?::|,)\s*((?:\w+\s*\:\s*)?QuotedFragment)`.
    static func filterArguments(_ b: Bytes, _ chunk: Range<Int>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = chunk.lowerBound
        let end = chunk.upperBound
        while i < end {
            guard b[i] == UInt8(ascii: ":") || b[i] == UInt8(ascii: ",") else {
                i += 1
                continue
            }
            var k = i + 1
            while k < end, isSpace(b[k]) { k += 1 }
            // keyword form
            if k < end, isWord(b[k]) {
                var w = k + 1
                while w < end, isWord(b[w]) { w += 1 }
                var c = w
                while c < end, isSpace(b[c]) { c += 1 }
                if c < end, b[c] == UInt8(ascii: ":") {
                    c += 1
                    while c < end, isSpace(b[c]) { c += 1 }
                    if let e = quotedFragment(b, c, end) {
                        out.append(k..<e)
                        i = e
                        continue
                    }
                }
            }
            if let e = quotedFragment(b, k, end) {
                out.append(k..<e)
                i = e
                continue
            }
            i += 1
        }
        return out
    }

    /// Ruby's `If#lax_parse`: split on `and` / `or`, each part `(QF)\s*([=!<>a-z_]+)?\s*(QF)?`.
    static func condition(_ b: Bytes) throws(LiquidError) -> Condition {
        // ExpressionsAndOperators scan: alternating condition chunks and operator words.
        var parts: [(isOperator: Bool, range: Range<Int>)] = []
        let n = b.count
        var i = 0
        func operatorAt(_ i: Int) -> Int? {
            // \b(?:\s?and\s?|\s?or\s?)\b  (word boundaries around the word)
            var j = i
            if j < n, isSpace(b[j]) { j += 1 }
            for word in ["and", "or"] {
                let w = Array(word.utf8)
                if j + w.count <= n, Array(b[j..<(j + w.count)]) == w {
                    let before = j == 0 ? false : isWord(b[j - 1])
                    let after = j + w.count < n ? isWord(b[j + w.count]) : false
                    if !before, !after {
                        var k = j + w.count
                        if k < n, isSpace(b[k]) { k += 1 }
                        return k
                    }
                }
            }
            return nil
        }
        while i < n {
            if let e = operatorAt(i), i == 0 || !isWord(b[i - 1]) {
                parts.append((true, i..<e))
                i = e
                continue
            }
            let start = i
            while i < n {
                var j = i
                while j < n, isSpace(b[j]) { j += 1 }
                if j < n, j > 0, !isWord(b[j - 1]), operatorAt(j) != nil { break }
                if j == 0, operatorAt(0) != nil { break }
                if j >= n {
                    i = j
                    break
                }
                let e = quotedFragment(b, j, n) ?? {
                    var k = j
                    while k < n, !isSpace(b[k]) { k += 1 }
                    return k
                }()
                i = e
                while i < n, isSpace(b[i]) { i += 1 }
            }
            if i > start { parts.append((false, start..<i)) } else { i += 1 }
        }
        func comparison(_ r: Range<Int>) throws(LiquidError) -> Condition.Comparison {
            guard let left = firstQuotedFragment(b, r.lowerBound, r.upperBound) else {
                throw LiquidError(.syntax, "Syntax Error in tag 'if' - Valid syntax: if [expression]")
            }
            var i = left.upperBound
            while i < r.upperBound, isSpace(b[i]) { i += 1 }
            var op: String?
            let opStart = i
            while i < r.upperBound,
                b[i] == UInt8(ascii: "=") || b[i] == UInt8(ascii: "!") || b[i] == UInt8(ascii: "<")
                    || b[i] == UInt8(ascii: ">") || (b[i] >= 0x61 && b[i] <= 0x7A) || b[i] == 0x5F
            {
                i += 1
            }
            if i > opStart { op = string(b, opStart..<i) }
            while i < r.upperBound, isSpace(b[i]) { i += 1 }
            var right: Expression = .nilLiteral
            if let e = quotedFragment(b, i, r.upperBound) { right = expression(b, i..<e, inCondition: true) }
            return .init(left: expression(b, left, inCondition: true), op: op.map(Condition.Operator.init), right: right)
        }
        guard let last = parts.last, !last.isOperator else {
            throw LiquidError(.syntax, "Syntax Error in tag 'if' - Valid syntax: if [expression]")
        }
        var comparisons: [Condition.Comparison] = []
        var relations: [Bool] = []
        var k = 0
        while k < parts.count {
            let part = parts[k]
            if part.isOperator {
                let word = string(b, trimmed(b, part.range))
                relations.append(word == "and")
                k += 1
                continue
            }
            if comparisons.count > relations.count {
                throw LiquidError(.syntax, "Syntax Error in tag 'if' - Valid syntax: if [expression]")
            }
            comparisons.append(try comparison(part.range))
            k += 1
        }
        guard comparisons.count == relations.count + 1 else {
            throw LiquidError(.syntax, "Syntax Error in tag 'if' - Valid syntax: if [expression]")
        }
        return Condition(comparisons: comparisons, relations: relations)
    }
}
