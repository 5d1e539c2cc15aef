import HTTPTypes
import Hummingbird
import Liquid

/// Small helpers for the server's HTML and form handling.
enum HTML {
    /// `&`, `<`, `>`, `"`, `'` escaped (the Liquid `escape` filter's rules).
    static func escape(_ s: String) -> String { LiquidHTML.escape(s) }

    /// A page: no script, inline style only, not framed, not cached.
    static func page(_ status: HTTPResponse.Status, lang: String, title: String, body: String, wide: Bool = false) -> Response {
        let html = """
            <!doctype html>
            <html lang="\(escape(lang))">
            <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title>
            <style>
            body{font-family:Helvetica,Arial,sans-serif;max-width:\(wide ? 80 : 40)rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.5}
            button{font-size:1rem;padding:.5rem 1rem;margin:.5rem .5rem 0 0}
            label{display:block;padding:.3rem 0}
            table{border-collapse:collapse;font-size:.9rem}td,th{padding:.25rem .5rem;border-bottom:1px solid #ddd;text-align:right}
            td:first-child,th:first-child{text-align:left}.note{color:#555}
            </style></head>
            <body>
            \(body)
            </body></html>
            """
        return Response(status: status, headers: securityHeaders(contentType: "text/html; charset=utf-8"),
                        body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func securityHeaders(contentType: String) -> HTTPFields {
        var h = HTTPFields()
        h[.contentType] = contentType
        h[.cacheControl] = "no-store"
        h[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
        h[HTTPField.Name("X-Frame-Options")!] = "DENY"
        h[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        h[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return h
    }

    /// The fields of a form body: `multipart/form-data` (by the boundary of `contentType`) or
    /// `application/x-www-form-urlencoded` (anything else), in order (a name may repeat). RFC 8058 lets mailbox
    /// providers send either.
    static func form(_ body: String, contentType: String?) -> [(String, String)] {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data"),
              let range = contentType.range(of: "boundary=", options: .caseInsensitive) else { return form(body) }
        var boundary = String(contentType[range.upperBound...].prefix { $0 != ";" }).trimmingCharacters(in: .whitespaces)
        if boundary.hasPrefix("\""), boundary.hasSuffix("\""), boundary.count >= 2 { boundary = String(boundary.dropFirst().dropLast()) }
        guard !boundary.isEmpty else { return [] }
        var fields: [(String, String)] = []
        for part in body.components(separatedBy: "--" + boundary) {
            // Headers, a blank line, the value (ending with the CRLF before the next boundary).
            guard let split = part.range(of: "\r\n\r\n") ?? part.range(of: "\n\n") else { continue }
            let headers = part[..<split.lowerBound]
            guard let nameRange = headers.range(of: "name=\"") else { continue }
            let name = headers[nameRange.upperBound...].prefix { $0 != "\"" }
            var value = part[split.upperBound...]
            // "\r\n" is one Character in Swift: one dropLast for either line end.
            if value.hasSuffix("\r\n") || value.hasSuffix("\n") { value = value.dropLast() }
            fields.append((String(name), String(value)))
        }
        return fields
    }

    /// The fields of an `application/x-www-form-urlencoded` body, in order (a name may repeat).
    static func form(_ body: String) -> [(String, String)] {
        body.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
            }
            return (decode(kv[0]), kv.count > 1 ? decode(kv[1]) : "")
        }
    }
}

import Foundation
