/// The tokens of Shopify's strict expression grammar (Ruby's `Liquid::Lexer`).
struct ExpressionToken {
    enum Kind: String {
        case comparison, string, number, id, dotdot, pipe, dot, colon, comma
        case openSquare = "open_square", closeSquare = "close_square"
        case openRound = "open_round", closeRound = "close_round"
        case question, dash
        case end = "end_of_string"
    }

    var kind: Kind
    var text: String
}

/// Ruby's `Liquid::Lexer`: comparison operators, quoted strings, numbers, identifiers (`[a-zA-Z_][\w-]*\??`),
/// `..` and single-character specials; anything else is a syntax error.
enum ExpressionLexer {
    static func tokenize(_ b: [UInt8]) throws(LiquidError) -> [ExpressionToken] {
        var out: [ExpressionToken] = []
        var i = 0
        let n = b.count
        func text(_ s: Int, _ e: Int) -> String { String(decoding: b[s..<e], as: UTF8.self) }
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        while true {
            while i < n, TemplateLexer.isSpace(b[i]) { i += 1 }
            if i >= n { break }
            let c = b[i]
            // Comparison operators: == != <> <= < >= > contains(?=\s)
            if c == UInt8(ascii: "="), i + 1 < n, b[i + 1] == UInt8(ascii: "=") {
                out.append(.init(kind: .comparison, text: "=="))
                i += 2
                continue
            }
            if c == UInt8(ascii: "!"), i + 1 < n, b[i + 1] == UInt8(ascii: "=") {
                out.append(.init(kind: .comparison, text: "!="))
                i += 2
                continue
            }
            if c == UInt8(ascii: "<") {
                if i + 1 < n, b[i + 1] == UInt8(ascii: ">") || b[i + 1] == UInt8(ascii: "=") {
                    out.append(.init(kind: .comparison, text: text(i, i + 2)))
                    i += 2
                } else {
                    out.append(.init(kind: .comparison, text: "<"))
                    i += 1
                }
                continue
            }
            if c == UInt8(ascii: ">") {
                if i + 1 < n, b[i + 1] == UInt8(ascii: "=") {
                    out.append(.init(kind: .comparison, text: ">="))
                    i += 2
                } else {
                    out.append(.init(kind: .comparison, text: ">"))
                    i += 1
                }
                continue
            }
            if c == UInt8(ascii: "c"), i + 8 < n, text(i, i + 8) == "contains", TemplateLexer.isSpace(b[i + 8]) {
                out.append(.init(kind: .comparison, text: "contains"))
                i += 8
                continue
            }
            if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                var j = i + 1
                while j < n, b[j] != c { j += 1 }
                if j < n {
                    out.append(.init(kind: .string, text: text(i, j + 1)))
                    i = j + 1
                    continue
                }
            }
            if isDigit(c) || (c == UInt8(ascii: "-") && i + 1 < n && isDigit(b[i + 1])) {
                var j = i + 1
                while j < n, isDigit(b[j]) { j += 1 }
                if j + 1 < n, b[j] == UInt8(ascii: "."), isDigit(b[j + 1]) {
                    j += 1
                    while j < n, isDigit(b[j]) { j += 1 }
                }
                out.append(.init(kind: .number, text: text(i, j)))
                i = j
                continue
            }
            if (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x5F {
                var j = i + 1
                while j < n, TemplateLexer.isWord(b[j]) || b[j] == UInt8(ascii: "-") { j += 1 }
                if j < n, b[j] == UInt8(ascii: "?") { j += 1 }
                out.append(.init(kind: .id, text: text(i, j)))
                i = j
                continue
            }
            if c == UInt8(ascii: "."), i + 1 < n, b[i + 1] == UInt8(ascii: ".") {
                out.append(.init(kind: .dotdot, text: ".."))
                i += 2
                continue
            }
            let kind: ExpressionToken.Kind
            switch c {
            case UInt8(ascii: "|"): kind = .pipe
            case UInt8(ascii: "."): kind = .dot
            case UInt8(ascii: ":"): kind = .colon
            case UInt8(ascii: ","): kind = .comma
            case UInt8(ascii: "["): kind = .openSquare
            case UInt8(ascii: "]"): kind = .closeSquare
            case UInt8(ascii: "("): kind = .openRound
            case UInt8(ascii: ")"): kind = .closeRound
            case UInt8(ascii: "?"): kind = .question
            case UInt8(ascii: "-"): kind = .dash
            default:
                var j = i + 1
                while j < n, b[j] & 0xC0 == 0x80 { j += 1 }
                throw LiquidError(.syntax, "Unexpected character \(text(i, j))")
            }
            out.append(.init(kind: kind, text: text(i, i + 1)))
            i += 1
        }
        out.append(.init(kind: .end, text: ""))
        return out
    }
}
