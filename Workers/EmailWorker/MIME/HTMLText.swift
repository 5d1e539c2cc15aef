/// Derives the text part of a message from its html: drops `head`, `style` and `script`, turns block ends
/// into line breaks, writes links as `text (url)` and decodes the common entities.
public enum HTMLText {
    /// The plain-text rendering of `html`.
    public static func text(from html: String) -> String {
        var out = ""
        out.reserveCapacity(html.utf8.count / 2)
        var i = html.startIndex
        var pendingHref: String? = nil
        var skipUntil: String? = nil
        while i < html.endIndex {
            let c = html[i]
            if c == "<", let close = html[i...].firstIndex(of: ">") {
                let tag = html[html.index(after: i)..<close]
                let lower = tag.lowercased()
                let name = lower.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "/" && lower.first != "/" }).first.map(String.init) ?? ""
                i = html.index(after: close)
                if let end = skipUntil {
                    if name == end { skipUntil = nil }
                    continue
                }
                switch name {
                case "head", "style", "script", "title": skipUntil = "/" + name
                case "br", "br/": out += "\n"
                case "/p", "/div", "/h1", "/h2", "/h3", "/h4", "/table", "/ul", "/ol": out += "\n\n"
                case "/tr", "/li": out += "\n"
                case "li": out += "- "
                case "td", "th": out += " "
                case "a": pendingHref = attribute("href", in: String(tag))
                case "/a":
                    if let href = pendingHref, href.hasPrefix("http") { out += " (\(href))" }
                    pendingHref = nil
                default: break
                }
                continue
            }
            if skipUntil == nil {
                if c == "&", let semi = html[i...].prefix(10).firstIndex(of: ";") {
                    let entity = String(html[html.index(after: i)..<semi])
                    if let decoded = decode(entity) {
                        out += decoded
                        i = html.index(after: semi)
                        continue
                    }
                }
                out.append(c)
            }
            i = html.index(after: i)
        }
        return tidy(out)
    }

    static func attribute(_ name: String, in tag: String) -> String? {
        for quote in ["\"", "'"] {
            if let r = tag.range(of: "\(name)=\(quote)") {
                let rest = tag[r.upperBound...]
                if let end = rest.firstIndex(of: Character(quote)) {
                    return String(rest[..<end]).replacingOccurrences(of: "&amp;", with: "&")
                }
            }
        }
        return nil
    }

    static func decode(_ entity: String) -> String? {
        switch entity {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "#39", "apos": return "'"
        case "nbsp": return " "
        default:
            if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16), let s = Unicode.Scalar(v) { return String(s) }
            if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst()), let s = Unicode.Scalar(v) { return String(s) }
            return nil
        }
    }

    /// Collapses runs of spaces, trims lines, keeps at most one empty line in a row.
    static func tidy(_ text: String) -> String {
        var lines: [String] = []
        var blank = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let words = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            let line = words.joined(separator: " ")
            if line.isEmpty {
                blank += 1
                if blank == 1, !lines.isEmpty { lines.append("") }
            } else {
                blank = 0
                lines.append(line)
            }
        }
        while lines.last == "" { lines.removeLast() }
        return lines.joined(separator: "\n") + "\n"
    }
}
