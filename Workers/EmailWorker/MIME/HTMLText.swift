/// Derives the text part of a message from its html: drops `head`, `style` and `script`, turns block ends
/// into line breaks, writes links as `text (url)` and decodes the common entities.
///
/// It works on the UTF-8 bytes (tags, entities and whitespace are ASCII), once per message on the hot path.
public enum HTMLText {
    /// The plain-text rendering of `html`.
    public static func text(from html: String) -> String {
        var html = html
        return html.withUTF8 { String(decoding: tidy(raw($0)), as: UTF8.self) }
    }

    /// The plain-text rendering of `html` given as UTF-8 bytes.
    public static func text(fromBytes html: [UInt8]) -> String {
        html.withUnsafeBufferPointer { String(decoding: tidy(raw($0)), as: UTF8.self) }
    }

    /// What the text pass does at a tag.
    private enum Action {
        /// Drops everything up to the closing tag (packed name).
        case skip(until: UInt64)
        case lineBreak, blockEnd, bullet, cell, linkStart, linkEnd
    }

    /// The tags the text pass acts on, by packed name (see ``packedName(_:)``).
    private static let actions: [UInt64: Action] = {
        var actions: [UInt64: Action] = [:]
        for name in ["head", "style", "script", "title"] { actions[pack(name)] = .skip(until: pack("/" + name)) }
        actions[pack("br")] = .lineBreak
        for name in ["/p", "/div", "/h1", "/h2", "/h3", "/h4", "/table", "/ul", "/ol"] { actions[pack(name)] = .blockEnd }
        actions[pack("/tr")] = .lineBreak
        actions[pack("/li")] = .lineBreak
        actions[pack("li")] = .bullet
        actions[pack("td")] = .cell
        actions[pack("th")] = .cell
        actions[pack("a")] = .linkStart
        actions[pack("/a")] = .linkEnd
        return actions
    }()

    /// Tags interpreted, entities decoded; whitespace as it was.
    static func raw(_ h: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(h.count / 2)
        let n = h.count
        // A `<` after the last `>` is text, not a tag.
        let lastClose = h.lastIndex(of: UInt8(ascii: ">")) ?? -1
        var i = 0
        var pendingHref: [UInt8]? = nil
        var skipUntil: UInt64? = nil
        while i < n {
            let c = h[i]
            if c == UInt8(ascii: "<"), i < lastClose {
                var close = i + 1
                while h[close] != UInt8(ascii: ">") { close += 1 }
                let tag = UnsafeBufferPointer(rebasing: h[(i + 1)..<close])
                let name = packedName(tag)
                i = close + 1
                if let end = skipUntil {
                    if name == end { skipUntil = nil }
                    continue
                }
                switch actions[name] {
                case .skip(let until)?: skipUntil = until
                case .lineBreak?: out.append(UInt8(ascii: "\n"))
                case .blockEnd?:
                    out.append(UInt8(ascii: "\n"))
                    out.append(UInt8(ascii: "\n"))
                case .bullet?: out.append(contentsOf: "- ".utf8)
                case .cell?: out.append(UInt8(ascii: " "))
                case .linkStart?: pendingHref = attribute("href", in: tag)
                case .linkEnd?:
                    if let href = pendingHref, href.starts(with: "http".utf8) {
                        out.append(contentsOf: " (".utf8)
                        out.append(contentsOf: href)
                        out.append(UInt8(ascii: ")"))
                    }
                    pendingHref = nil
                case nil: break
                }
                continue
            }
            if skipUntil == nil {
                if c == UInt8(ascii: "&") {
                    var semi = i + 1
                    let limit = min(n, i + 10)
                    while semi < limit && h[semi] != UInt8(ascii: ";") { semi += 1 }
                    if semi < limit, let decoded = decode(String(decoding: UnsafeBufferPointer(rebasing: h[(i + 1)..<semi]), as: UTF8.self)) {
                        out.append(contentsOf: decoded.utf8)
                        i = semi + 1
                        continue
                    }
                }
                out.append(c)
            }
            i += 1
        }
        return out
    }

    /// The lowercased name of a tag's text (`a href=...` → `a`, `br/` → `br`, `/p` → `/p`) packed into an
    /// integer, 0 when longer than 8 bytes: the text pass compares tags without building a string for each.
    static func packedName(_ tag: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let (s, e) = nameRange(tag)
        guard e - s <= 8 else { return 0 }
        var bits: UInt64 = 0
        for k in s..<e { bits = bits << 8 | UInt64(lowercased(tag[k])) }
        return bits
    }

    /// ``packedName(_:)`` of a name written out.
    private static func pack(_ name: String) -> UInt64 {
        Array(name.utf8).withUnsafeBufferPointer { packedName($0) }
    }

    private static func lowercased(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b + 32 : b
    }

    /// Where a tag's name is in its text: after leading whitespace, up to whitespace (or a `/`, except the one
    /// that starts a closing tag).
    private static func nameRange(_ tag: UnsafeBufferPointer<UInt8>) -> (Int, Int) {
        let splitsOnSlash = tag.first != UInt8(ascii: "/")
        func separates(_ b: UInt8) -> Bool {
            b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r")
                || (splitsOnSlash && b == UInt8(ascii: "/"))
        }
        var s = 0
        while s < tag.count && separates(tag[s]) { s += 1 }
        var e = s
        while e < tag.count && !separates(tag[e]) { e += 1 }
        return (s, e)
    }

    /// The value of `name="..."` (or `'...'`) in a tag, `&amp;` decoded.
    static func attribute(_ name: String, in tag: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        for quote in [UInt8(ascii: "\""), UInt8(ascii: "'")] {
            let needle = Array(name.utf8) + [UInt8(ascii: "="), quote]
            guard let start = ByteSearch.firstIndex(of: needle, in: tag, from: 0) else { continue }
            let valueStart = start + needle.count
            guard let end = tag[valueStart...].firstIndex(of: quote) else { continue }
            return ByteSearch.replacing(Array("&amp;".utf8), with: [UInt8(ascii: "&")], in: Array(tag[valueStart..<end]))
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

    /// Collapses runs of spaces (and tabs, CRs), trims lines, keeps at most one empty line in a row, drops empty
    /// lines at the start and the end, ends with one line break.
    static func tidy(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var started = false
        var pendingBlank = false
        var lineHasWord = false
        var pendingSpace = false
        func endLine() {
            if !lineHasWord && started { pendingBlank = true }
            lineHasWord = false
            pendingSpace = false
        }
        for b in text {
            switch b {
            case UInt8(ascii: "\n"):
                endLine()
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                if lineHasWord { pendingSpace = true }
            default:
                if !lineHasWord {
                    if started {
                        out.append(UInt8(ascii: "\n"))
                        if pendingBlank { out.append(UInt8(ascii: "\n")) }
                    }
                    started = true
                    pendingBlank = false
                    lineHasWord = true
                } else if pendingSpace {
                    out.append(UInt8(ascii: " "))
                }
                pendingSpace = false
                out.append(b)
            }
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }
}
