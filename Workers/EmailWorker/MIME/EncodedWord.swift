/// RFC 2047 encoded words for header text that is not plain ASCII: `=?UTF-8?B?...?=`, each word at most 75
/// characters, split on character boundaries, folded with CRLF + space.
public enum EncodedWord {
    /// Whether `text` can go into a header as it is (printable ASCII and spaces, no `=?`).
    public static func isPlain(_ text: String) -> Bool {
        var previous: UInt8 = 0
        for b in text.utf8 {
            guard b >= 0x20 && b < 0x7F, !(previous == UInt8(ascii: "=") && b == UInt8(ascii: "?")) else { return false }
            previous = b
        }
        return true
    }

    /// `text` as is when plain, else as encoded words (B encoding of UTF-8).
    public static func encode(_ text: String) -> String {
        if isPlain(text) { return text }
        var words: [String] = []
        var chunk: [UInt8] = []
        // 75 - len("=?UTF-8?B?") - len("?=") = 63 characters of base64 = 45 bytes (rounded down to 3s).
        for ch in text {
            let bytes = Array(String(ch).utf8)
            if chunk.count + bytes.count > 45 {
                words.append(word(chunk))
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append(word(chunk)) }
        return words.joined(separator: "\r\n ")
    }

    static func word(_ bytes: [UInt8]) -> String {
        "=?UTF-8?B?" + String(decoding: Base64.encode(bytes), as: UTF8.self) + "?="
    }

    /// An address header value: `Name <addr>` with the name encoded (or quoted) as needed.
    public static func mailbox(_ value: String) -> String {
        guard value.hasSuffix(">"), let lt = value.utf8.lastIndex(of: UInt8(ascii: "<")) else { return trimmed(value[...]) }
        var name = trimmed(value[..<lt])
        let address = value[lt...]
        if name.isEmpty { return String(address) }
        if name.utf8.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") { name = String(name.dropFirst().dropLast()) }
        if isPlain(name) {
            if name.utf8.contains(where: { specials.contains($0) }) {
                var quoted = "\""
                for c in name.unicodeScalars {
                    if c == "\\" || c == "\"" { quoted.unicodeScalars.append("\\") }
                    quoted.unicodeScalars.append(c)
                }
                name = quoted + "\""
            }
            return "\(name) \(address)"
        }
        return "\(encode(name)) \(address)"
    }

    /// RFC 5322 specials that make a display name need quotes.
    static let specials = Set("()<>[]:;@\\,.\"".utf8)

    /// `text` without leading and trailing spaces and tabs.
    static func trimmed(_ text: Substring) -> String {
        let u = text.utf8
        guard let first = u.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
              let last = u.lastIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        return String(text[first...last])
    }
}
