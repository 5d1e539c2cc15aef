import Foundation
import Liquid

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
        var html = html
        return html.withUTF8 { String(decoding: decorate(utf8: $0), as: UTF8.self) }
    }

    /// `html` (UTF-8 bytes) with the parameters added to each http(s) `href`; with `track`, each such link (after
    /// the parameters are added) is replaced by `track(index, url)`: its index among the tracked links (0 first) and
    /// its URL as the browser would follow it (`&amp;` read as `&`).
    public func decorate(bytes html: [UInt8], track: ((Int, String) -> String)? = nil) -> [UInt8] {
        guard !parameters.isEmpty || track != nil else { return html }
        return html.withUnsafeBufferPointer { decorate(utf8: $0, track: track) }
    }

    private func decorate(utf8 h: UnsafeBufferPointer<UInt8>, track: ((Int, String) -> String)? = nil) -> [UInt8] {
        var index = 0
        var out: [UInt8] = []
        out.reserveCapacity(h.count + 1024)
        let href = Array("href=".utf8)
        var from = 0
        while let at = ByteSearch.firstIndex(of: href, in: h, from: from) {
            var i = at + href.count
            out.append(contentsOf: h[from..<i])
            from = i
            guard i < h.count, h[i] == UInt8(ascii: "\"") || h[i] == UInt8(ascii: "'") else { continue }
            let quote = h[i]
            i += 1
            var end = i
            while end < h.count && h[end] != quote { end += 1 }
            guard end < h.count else { continue }
            out.append(quote)
            let url = UnsafeBufferPointer(rebasing: h[i..<end])
            if let track, isTracked(url), Self.isAnchor(h, hrefAt: at) {
                var decorated: [UInt8] = []
                decorateURL(url, into: &decorated)
                let target = String(decoding: decorated, as: UTF8.self).replacingOccurrences(of: "&amp;", with: "&")
                out.append(contentsOf: LiquidHTML.escape(track(index, target)).utf8)
                index += 1
            } else {
                decorateURL(url, into: &out)
            }
            out.append(quote)
            from = end + 1
        }
        out.append(contentsOf: h[from...])
        return out
    }

    /// Whether the `href=` at `at` belongs to an `<a>` or `<area>` tag (a `<link>` stylesheet or a `<base>` is not a
    /// click).
    static func isAnchor(_ h: UnsafeBufferPointer<UInt8>, hrefAt at: Int) -> Bool {
        var i = at
        while i > 0 && h[i] != UInt8(ascii: "<") && h[i] != UInt8(ascii: ">") { i -= 1 }
        guard h[i] == UInt8(ascii: "<") else { return false }
        var name: [UInt8] = []
        var j = i + 1
        while j < at, h[j] != UInt8(ascii: " "), h[j] != UInt8(ascii: "\t"), h[j] != UInt8(ascii: "\n"), h[j] != UInt8(ascii: "\r") {
            name.append(h[j] | 0x20)
            j += 1
        }
        return name == Array("a".utf8) || name == Array("area".utf8)
    }

    /// Whether `url` is an http(s) URL not skipped (one that gets the parameters, and tracking).
    func isTracked(_ url: UnsafeBufferPointer<UInt8>) -> Bool {
        func lowered(_ b: UInt8) -> UInt8 { b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b + 32 : b }
        let head = url.prefix(8).map(lowered)
        let isHTTP = head.starts(with: "http://".utf8) || head.starts(with: "https://".utf8)
        return isHTTP && !skipPrefixes.contains(where: { url.starts(with: $0.utf8) })
    }

    /// Appends `url` with the parameters (an http(s) URL not skipped) or as it is to `out`.
    func decorateURL(_ url: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        guard isTracked(url) else {
            out.append(contentsOf: url)
            return
        }
        let hash = url.firstIndex(of: UInt8(ascii: "#")) ?? url.count
        let base = UnsafeBufferPointer(rebasing: url[0..<hash])
        out.append(contentsOf: base)
        var hasQuery = base.contains(UInt8(ascii: "?"))
        for (name, value) in parameters where !Self.hasParameter(name, in: base) {
            out.append(contentsOf: hasQuery ? Array("&amp;".utf8) : [UInt8(ascii: "?")])
            hasQuery = true
            out.append(contentsOf: name.utf8)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: Self.percentEncode(value).utf8)
        }
        out.append(contentsOf: url[hash...])
    }

    /// Whether `url` already has `?name=`, `&name=` or `;name=`.
    static func hasParameter(_ name: String, in url: UnsafeBufferPointer<UInt8>) -> Bool {
        let key = Array(name.utf8) + [UInt8(ascii: "=")]
        var from = 0
        while let at = ByteSearch.firstIndex(of: key, in: url, from: from) {
            if at > 0, [UInt8(ascii: "?"), UInt8(ascii: "&"), UInt8(ascii: ";")].contains(url[at - 1]) { return true }
            from = at + 1
        }
        return false
    }

    /// `html` with a 1x1 tracking image before `</body>` (or at the end).
    public static func addPixel(_ html: String, url: String) -> String {
        String(decoding: addPixel(bytes: Array(html.utf8), url: url), as: UTF8.self)
    }

    /// `html` (UTF-8 bytes) with a 1x1 tracking image before `</body>` (or at the end).
    public static func addPixel(bytes html: [UInt8], url: String) -> [UInt8] {
        let img = Array("<img src=\"\(url)\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">".utf8)
        guard let at = ByteSearch.lastIndex(of: Array("</body>".utf8), in: html) else { return html + img }
        return Array(html[..<at]) + img + Array(html[at...])
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
