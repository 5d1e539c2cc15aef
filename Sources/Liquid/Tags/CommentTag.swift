/// Tags whose bodies are not Liquid: `comment` (nestable, skips everything including `raw`), `doc`,
/// inline comments `{% # ... %}` and `raw`.
enum CommentTag {
    /// Skips a `{% comment %}` body, honouring nested comments and raw blocks.
    static func skip(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) {
        var depth = 1
        while p.index < p.tokens.count {
            let t = p.tokens[p.index]
            p.index += 1
            guard t.kind == .tag, !t.malformed else { continue }
            switch t.name {
            case "comment": depth += 1
            case "endcomment":
                depth -= 1
                if depth == 0 {
                    p.trimNext = t.trimRight
                    return
                }
            case "raw":
                _ = try raw(&p, t)
            default: break
            }
        }
        throw p.syntaxError("'comment' tag was never closed", at: token)
    }

    /// Skips a `{% doc %}` body (no arguments, no nesting).
    static func skipDoc(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) {
        if !p.markup(token).allSatisfy(TemplateLexer.isSpace) {
            throw p.syntaxError("Syntax Error in 'doc' - Valid syntax: {% doc %}{% enddoc %}", at: token)
        }
        _ = try rawBody(&p, token, end: "enddoc", forbid: "doc")
    }

    /// An inline comment: every line must start with `#`.
    static func checkInline(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) {
        let m = p.markup(token)
        var i = 0
        while i < m.count {
            if m[i] == UInt8(ascii: "\n") {
                var j = i + 1
                while j < m.count, TemplateLexer.isSpace(m[j]) { j += 1 }
                if j < m.count, m[j] != UInt8(ascii: "#") {
                    throw p.syntaxError(
                        "Syntax error in tag '#' - Each line of comments must be prefixed by the '#' character",
                        at: token)
                }
                i = j
                continue
            }
            i += 1
        }
    }

    /// The text of a `{% raw %}` block.
    static func raw(_ p: inout Parser, _ token: TemplateToken) throws(LiquidError) -> String {
        if !p.markup(token).allSatisfy(TemplateLexer.isSpace) {
            throw p.syntaxError("Syntax Error in 'raw' - Valid syntax: {% raw %}{% endraw %}", at: token)
        }
        return try rawBody(&p, token, end: "endraw", forbid: nil)
    }

    /// Ruby's `Raw#parse`: tokens up to one that ends with `{% endraw %}` (possibly after other text).
    static func rawBody(_ p: inout Parser, _ token: TemplateToken, end: String, forbid: String?) throws(LiquidError) -> String {
        var body: [UInt8] = []
        let trimStart = token.trimRight
        if p.liquidMode {
            while p.index < p.tokens.count {
                let t = p.tokens[p.index]
                p.index += 1
                if t.name == end { return String(decoding: body, as: UTF8.self) }
                body.append(contentsOf: p.src[t.start..<t.end])
                body.append(UInt8(ascii: "\n"))
            }
            throw p.syntaxError("'\(token.name)' tag was never closed", at: token)
        }
        while p.index < p.tokens.count {
            let t = p.tokens[p.index]
            p.index += 1
            if let forbid, t.kind == .tag, !t.malformed, t.name == forbid {
                throw p.syntaxError("Syntax Error in '\(token.name)' - nested '\(forbid)' tags are not allowed", at: t)
            }
            if let (prefixEnd, trimLeft, trimRight) = endTag(p.src, t, name: end) {
                body.append(contentsOf: p.src[t.start..<prefixEnd])
                var s = 0, e = body.count
                if trimStart { while s < e, TemplateLexer.isSpace(body[s]) { s += 1 } }
                if trimLeft { while e > s, TemplateLexer.isSpace(body[e - 1]) { e -= 1 } }
                p.trimNext = trimRight
                return String(decoding: body[s..<e], as: UTF8.self)
            }
            body.append(contentsOf: p.src[t.start..<t.end])
        }
        throw p.syntaxError("'\(token.name)' tag was never closed", at: token)
    }

    /// Whether a token ends with `{%-? name ... -?%}`: the offset where that tag starts and its trims.
    static func endTag(_ src: [UInt8], _ t: TemplateToken, name: String) -> (Int, Bool, Bool)? {
        guard t.end - t.start >= 4, src[t.end - 2] == UInt8(ascii: "%"), src[t.end - 1] == UInt8(ascii: "}") else {
            return nil
        }
        let word = Array(name.utf8)
        var i = t.end - 4
        while i >= t.start {
            if src[i] == UInt8(ascii: "{"), src[i + 1] == UInt8(ascii: "%") {
                var j = i + 2
                var trimLeft = false
                if j < t.end, src[j] == UInt8(ascii: "-") {
                    trimLeft = true
                    j += 1
                }
                while j < t.end, TemplateLexer.isSpace(src[j]) { j += 1 }
                let nameStart = j
                while j < t.end, TemplateLexer.isWord(src[j]) { j += 1 }
                if j > nameStart {
                    if Array(src[nameStart..<j]) == word {
                        return (i, trimLeft, src[t.end - 3] == UInt8(ascii: "-"))
                    }
                    return nil
                }
            }
            i -= 1
        }
        return nil
    }
}
