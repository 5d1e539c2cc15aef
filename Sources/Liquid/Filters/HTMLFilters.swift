/// The HTML filters: `escape` (`h`), `escape_once`, `strip_html`.
enum HTMLFilters {
    static let all: [String: LiquidFilterFunction] = [
        "escape": escape, "h": escape, "escape_once": escapeOnce, "strip_html": stripHTML,
    ]

    /// `escape`: Ruby's `CGI.escapeHTML`: `&<>"'` become `&amp; &lt; &gt; &quot; &#39;`; nil stays nil.
    static let escape: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        if case .nil = input { return .nil }
        return .string(escapeHTML(input.rubyToS, once: false))
    }

    /// `escape_once`: like `escape`, but an `&` that starts an entity (`&name;`, `&#123;`) is kept.
    static let escapeOnce: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(escapeHTML(input.rubyToS, once: true))
    }

    @inline(__always)
    static func needsEscape(_ c: UInt8) -> Bool {
        c == UInt8(ascii: "&") || c == UInt8(ascii: "<") || c == UInt8(ascii: ">") || c == UInt8(ascii: "\"")
            || c == UInt8(ascii: "'")
    }

    static func escapeHTML(_ s: String, once: Bool) -> String {
        let u = s.utf8
        guard let firstSpecial = u.firstIndex(where: needsEscape) else { return s }
        var bytes = Array(u)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        let start = u.distance(from: u.startIndex, to: firstSpecial)
        out.append(contentsOf: bytes[0..<start])
        var i = start
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "&"):
                if once && startsEntity(bytes, i + 1) {
                    out.append(c)
                } else {
                    out.append(contentsOf: "&amp;".utf8)
                }
            case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
            case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: "&quot;".utf8)
            case UInt8(ascii: "'"): out.append(contentsOf: "&#39;".utf8)
            default: out.append(c)
            }
            i += 1
        }
        bytes = out
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `b[i...]` is `[a-zA-Z]+;` or `#\d+;`.
    static func startsEntity(_ b: [UInt8], _ i: Int) -> Bool {
        var j = i
        if j < b.count, b[j] == UInt8(ascii: "#") {
            j += 1
            let digitsStart = j
            while j < b.count, b[j] >= 48, b[j] <= 57 { j += 1 }
            return j > digitsStart && j < b.count && b[j] == UInt8(ascii: ";")
        }
        let lettersStart = j
        while j < b.count, (b[j] | 0x20) >= 97, (b[j] | 0x20) <= 122 { j += 1 }
        return j > lettersStart && j < b.count && b[j] == UInt8(ascii: ";")
    }

    /// `strip_html`: removes `<script>…</script>`, `<!-- … -->`, `<style>…</style>` blocks, then every tag
    /// `<…>` (shortest match, across lines), as Ruby Liquid's regular expressions do.
    static let stripHTML: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        let s = input.rubyToS
        guard s.utf8.contains(UInt8(ascii: "<")) else { return .string(s) }
        let b = Array(s.utf8)
        let blocks = removeBlocks(b)
        return .string(String(decoding: removeTags(blocks), as: UTF8.self))
    }

    static func hasPrefix(_ b: [UInt8], _ i: Int, _ p: [UInt8]) -> Bool {
        guard i + p.count <= b.count else { return false }
        for k in 0..<p.count where b[i + k] != p[k] { return false }
        return true
    }

    static let blockKinds: [(open: [UInt8], close: [UInt8])] = [
        (Array("<script".utf8), Array("</script>".utf8)),
        (Array("<!--".utf8), Array("-->".utf8)),
        (Array("<style".utf8), Array("</style>".utf8)),
    ]

    static func removeBlocks(_ b: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var noClose = [false, false, false]  // once a closer is absent after i, it is absent after any later i
        var i = 0
        outer: while i < b.count {
            if b[i] == UInt8(ascii: "<") {
                for (k, kind) in blockKinds.enumerated() where !noClose[k] && hasPrefix(b, i, kind.open) {
                    if let close = byteFind(b, kind.close, from: i + kind.open.count) {
                        i = close + kind.close.count
                        continue outer
                    }
                    noClose[k] = true
                }
            }
            out.append(b[i])
            i += 1
        }
        return out
    }

    static func removeTags(_ b: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "<"), let close = b[(i + 1)...].firstIndex(of: UInt8(ascii: ">")) {
                i = close + 1
                continue
            }
            if b[i] == UInt8(ascii: "<") {
                // No `>` anywhere after: nothing more can match.
                out.append(contentsOf: b[i...])
                break
            }
            out.append(b[i])
            i += 1
        }
        return out
    }
}
