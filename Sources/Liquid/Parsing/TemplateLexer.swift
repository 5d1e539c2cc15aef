/// Splits template source into tokens the way Shopify's Ruby tokenizer does (regex
/// `{%.*?%}|{{.*?}}?|{{|{%`), and the markup of a `{% liquid %}` tag into one tag token per line.
enum TemplateLexer {
    static func isSpace(_ b: UInt8) -> Bool { b == 32 || (b >= 9 && b <= 13) }
    static func isWord(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F
    }

    /// Tokenizes a whole document.
    static func tokenize(_ src: [UInt8]) -> [TemplateToken] {
        var tokens: [TemplateToken] = []
        let n = src.count
        var i = 0
        var textStart = 0
        while i + 1 < n {
            guard src[i] == UInt8(ascii: "{"), src[i + 1] == UInt8(ascii: "{") || src[i + 1] == UInt8(ascii: "%")
            else {
                i += 1
                continue
            }
            if i > textStart { tokens.append(TemplateToken(kind: .text, start: textStart, end: i)) }
            let isTag = src[i + 1] == UInt8(ascii: "%")
            var j = i + 2
            var end = -1
            if isTag {
                while j + 1 < n {
                    if src[j] == UInt8(ascii: "%"), src[j + 1] == UInt8(ascii: "}") {
                        end = j + 2
                        break
                    }
                    j += 1
                }
            } else {
                while j < n {
                    if src[j] == UInt8(ascii: "}") {
                        end = j + 1 < n && src[j + 1] == UInt8(ascii: "}") ? j + 2 : j + 1
                        break
                    }
                    j += 1
                }
            }
            if end < 0 {
                tokens.append(TemplateToken(kind: .unterminated, start: i, end: i + 2))
                i += 2
                textStart = i
                continue
            }
            var token = TemplateToken(kind: isTag ? .tag : .output, start: i, end: end)
            if isTag { classifyTag(src, &token) } else { classifyOutput(src, &token) }
            tokens.append(token)
            i = end
            textStart = end
        }
        if n > textStart { tokens.append(TemplateToken(kind: .text, start: textStart, end: n)) }
        return tokens
    }

    /// Ruby's `FullToken`: `{%-?\s*(#|\w+)\s*(.*?)-?%}`.
    static func classifyTag(_ src: [UInt8], _ t: inout TemplateToken) {
        var p = t.start + 2
        var e = t.end - 2
        if p < e, src[p] == UInt8(ascii: "-") {
            t.trimLeft = true
            p += 1
        }
        if e - 1 >= p, src[e - 1] == UInt8(ascii: "-") {
            t.trimRight = true
            e -= 1
        } else if e - 1 >= t.start + 2, src[e - 1] == UInt8(ascii: "-") {
            t.trimRight = true  // `{%-%}`: the same dash trims both sides
        }
        while p < e, isSpace(src[p]) { p += 1 }
        let nameStart = p
        if p < e, src[p] == UInt8(ascii: "#") {
            p += 1
        } else {
            while p < e, isWord(src[p]) { p += 1 }
        }
        if p == nameStart {
            t.malformed = true
            return
        }
        t.name = String(decoding: src[nameStart..<p], as: UTF8.self)
        while p < e, isSpace(src[p]) { p += 1 }
        t.markupStart = p
        t.markupEnd = max(p, e)
    }

    /// Ruby's `ContentOfVariable`: `{{-?(.*?)-?}}`; a token ending in a single `}` is malformed.
    static func classifyOutput(_ src: [UInt8], _ t: inout TemplateToken) {
        guard t.end - t.start >= 4, src[t.end - 2] == UInt8(ascii: "}") else {
            t.malformed = true
            return
        }
        var p = t.start + 2
        var e = t.end - 2
        if p < e, src[p] == UInt8(ascii: "-") {
            t.trimLeft = true
            p += 1
        }
        if e - 1 >= p, src[e - 1] == UInt8(ascii: "-") {
            t.trimRight = true
            e -= 1
        } else if e - 1 >= t.start + 2, src[e - 1] == UInt8(ascii: "-") {
            t.trimRight = true
        }
        t.markupStart = p
        t.markupEnd = max(p, e)
    }

    /// The lines of a `{% liquid %}` tag's markup as tag tokens (Ruby: `LiquidTagToken` per `\n` line).
    static func liquidLines(_ src: [UInt8], from start: Int, to end: Int) -> [TemplateToken] {
        var tokens: [TemplateToken] = []
        var lineStart = start
        var i = start
        while i <= end {
            if i == end || src[i] == UInt8(ascii: "\n") {
                var p = lineStart
                while p < i, isSpace(src[p]) { p += 1 }
                if p < i {
                    var t = TemplateToken(kind: .tag, start: lineStart, end: i)
                    let nameStart = p
                    if src[p] == UInt8(ascii: "#") {
                        p += 1
                    } else {
                        while p < i, isWord(src[p]) { p += 1 }
                    }
                    if p == nameStart {
                        t.malformed = true
                        t.name = String(decoding: src[lineStart..<i], as: UTF8.self)
                    } else {
                        t.name = String(decoding: src[nameStart..<p], as: UTF8.self)
                        while p < i, isSpace(src[p]) { p += 1 }
                        t.markupStart = p
                        t.markupEnd = i
                    }
                    tokens.append(t)
                }
                lineStart = i + 1
            }
            i += 1
        }
        return tokens
    }
}
