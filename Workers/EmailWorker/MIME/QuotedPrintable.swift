/// Quoted-printable (RFC 2045 §6.7) for UTF-8 text parts: CRLF line ends, encoded lines of at most 76
/// characters (soft breaks `=`), `=` and bytes outside printable ASCII encoded, trailing spaces and tabs
/// encoded, a `.` at the start of a line encoded (so SMTP never needs to dot-stuff it).
public enum QuotedPrintable {
    static let hex = Array("0123456789ABCDEF".utf8)

    /// Encodes `text`; any line end (`\n`, `\r\n`) becomes CRLF.
    public static func encode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + text.utf8.count / 8)
        let bytes = Array(text.utf8)
        var lineLength = 0
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1; continue }
            if b == 0x0A {
                out += [0x0D, 0x0A]
                lineLength = 0
                i += 1
                continue
            }
            let nextIsEOL = i + 1 >= bytes.count || bytes[i + 1] == 0x0A || (bytes[i + 1] == 0x0D)
            let literal: Bool
            switch b {
            case 0x3D: literal = false
            case 0x20, 0x09: literal = !nextIsEOL
            case 0x2E: literal = lineLength != 0
            case 0x21...0x7E: literal = true
            default: literal = false
            }
            let width = literal ? 1 : 3
            // Keep room for a soft break `=` within 76 characters.
            if lineLength + width > 75 {
                out += [0x3D, 0x0D, 0x0A]
                lineLength = 0
            }
            if literal {
                if b == 0x2E && lineLength == 0 {
                    out += [0x3D, hex[Int(b >> 4)], hex[Int(b & 15)]]
                    lineLength += 3
                } else {
                    out.append(b)
                    lineLength += 1
                }
            } else {
                out += [0x3D, hex[Int(b >> 4)], hex[Int(b & 15)]]
                lineLength += 3
            }
            i += 1
        }
        return out
    }
}
