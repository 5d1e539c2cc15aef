/// Adds UTM parameters to every http(s) link (`href="..."`) of a message's html, and an optional
/// open-tracking pixel before `</body>`.
///
/// A link that already has a parameter keeps its own value; links starting with one of `skipPrefixes`
/// (the unsubscribe and preference-centre links) are left alone. Parameters are appended with `&amp;`
/// (the html is html), values percent-encoded.
public struct LinkDecorator: Sendable {
    /// Parameters in order, e.g. `utm_source=email`, `utm_medium=email`, `utm_campaign=<campaign id>`.
    public var parameters: [(String, String)]
    /// Links left unchanged.
    public var skipPrefixes: [String]

    public init(parameters: [(String, String)], skipPrefixes: [String] = []) {
        self.parameters = parameters
        self.skipPrefixes = skipPrefixes
    }

    /// `html` with the parameters added to each http(s) `href`.
    public func decorate(_ html: String) -> String {
        guard !parameters.isEmpty else { return html }
        var out = ""
        out.reserveCapacity(html.utf8.count + 256)
        var rest = Substring(html)
        while let range = rest.range(of: "href=") {
            out += rest[..<range.upperBound]
            rest = rest[range.upperBound...]
            guard let quote = rest.first, quote == "\"" || quote == "'" else { continue }
            let afterQuote = rest.index(after: rest.startIndex)
            guard let end = rest[afterQuote...].firstIndex(of: quote) else { continue }
            let url = rest[afterQuote..<end]
            out.append(quote)
            out += decorateURL(url)
            out.append(quote)
            rest = rest[rest.index(after: end)...]
        }
        out += rest
        return out
    }

    func decorateURL(_ url: Substring) -> String {
        let lower = url.prefix(8).lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else { return String(url) }
        if skipPrefixes.contains(where: { url.hasPrefix($0) }) { return String(url) }
        var base = url
        var fragment: Substring = ""
        if let hash = url.firstIndex(of: "#") {
            base = url[..<hash]
            fragment = url[hash...]
        }
        var s = String(base)
        var hasQuery = base.contains("?")
        for (name, value) in parameters where !base.contains("?\(name)=") && !base.contains("&\(name)=") && !base.contains(";\(name)=") {
            s += hasQuery ? "&amp;" : "?"
            hasQuery = true
            s += name + "=" + Self.percentEncode(value)
        }
        return s + fragment
    }

    /// `html` with a 1x1 tracking image before `</body>` (or at the end).
    public static func addPixel(_ html: String, url: String) -> String {
        let img = "<img src=\"\(url)\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">"
        if let r = html.range(of: "</body>", options: .backwards) {
            return html[..<r.lowerBound] + img + html[r.lowerBound...]
        }
        return html + img
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(b >> 4)])
                out.unicodeScalars.append(hex[Int(b & 15)])
            }
        }
        return out
    }
}

extension LinkDecorator {
    /// `&`, `<`, `>`, `"` and `'` escaped for html.
    public static func escapeHTML(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
