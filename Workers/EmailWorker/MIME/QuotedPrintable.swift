/// Quoted-printable (RFC 2045 §6.7) for UTF-8 text parts: CRLF line ends, encoded lines of at most 76
/// characters (soft breaks `=`), `=` and bytes outside printable ASCII encoded, trailing spaces and tabs
/// encoded, a `.` at the start of a line encoded (so SMTP never needs to dot-stuff it).
public enum QuotedPrintable {
    static let hex = Array("0123456789ABCDEF".utf8)

    /// Encodes `text`; any line end (`\n`, `\r\n`) becomes CRLF.
    public static func encode(_ text: String) -> [UInt8] {
        var text = text
        return text.withUTF8 { bytes in
            // At most 3 characters a byte, a soft break (3) per 24 encoded bytes, CRLF for LF.
            let capacity = bytes.count * 4 + bytes.count / 6 + 16
            return [UInt8](unsafeUninitializedCapacity: capacity) { out, count in
                var n = 0
                @inline(__always) func put(_ b: UInt8) { out[n] = b; n += 1 }
                @inline(__always) func encoded(_ b: UInt8) { put(0x3D); put(hex[Int(b >> 4)]); put(hex[Int(b & 15)]) }
                var lineLength = 0
                var i = 0
                while i < bytes.count {
                    let b = bytes[i]
                    // Most bytes: printable ASCII other than `=` and `.`, literal anywhere on a line.
                    if b >= 0x21 && b <= 0x7E && b != 0x3D && b != 0x2E {
                        if lineLength >= 75 {
                            put(0x3D); put(0x0D); put(0x0A)
                            lineLength = 0
                        }
                        put(b)
                        lineLength += 1
                        i += 1
                        continue
                    }
                    if b == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1; continue }
                    if b == 0x0A {
                        put(0x0D); put(0x0A)
                        lineLength = 0
                        i += 1
                        continue
                    }
                    let nextIsEOL = i + 1 >= bytes.count || bytes[i + 1] == 0x0A || bytes[i + 1] == 0x0D
                    let literal: Bool
                    switch b {
                    case 0x3D: literal = false
                    case 0x20, 0x09: literal = !nextIsEOL
                    case 0x2E: literal = lineLength != 0
                    case 0x21...0x7E: literal = true
                    default: literal = false
                    }
                    // Keep room for a soft break `=` within 76 characters.
                    if lineLength + (literal ? 1 : 3) > 75 {
                        put(0x3D); put(0x0D); put(0x0A)
                        lineLength = 0
                    }
                    if literal && !(b == 0x2E && lineLength == 0) {
                        put(b)
                        lineLength += 1
                    } else {
                        // Not literal, or a `.` that a soft break just moved to the start of a line.
                        encoded(b)
                        lineLength += 3
                    }
                    i += 1
                }
                count = n
            }
        }
    }
}
