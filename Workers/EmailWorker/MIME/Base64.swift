/// Base64 (RFC 4648) on bytes: the standard alphabet with padding (MIME encoded words) or the URL alphabet
/// without padding (unsubscribe tokens).
enum Base64 {
    static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let url = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// `bytes` in base64 with `alphabet`, padded with `=` to a multiple of 4 when `padded`.
    static func encode<C: Collection>(_ bytes: C, alphabet: [UInt8] = standard, padded: Bool = true) -> [UInt8]
    where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let b0 = bytes[i]
            i = bytes.index(after: i)
            let b1: UInt8? = i != bytes.endIndex ? bytes[i] : nil
            if b1 != nil { i = bytes.index(after: i) }
            let b2: UInt8? = b1 != nil && i != bytes.endIndex ? bytes[i] : nil
            if b2 != nil { i = bytes.index(after: i) }
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 3) << 4 | (b1 ?? 0) >> 4)])
            if let b1 { out.append(alphabet[Int((b1 & 15) << 2 | (b2 ?? 0) >> 6)]) } else if padded { out.append(UInt8(ascii: "=")) }
            if let b2 { out.append(alphabet[Int(b2 & 63)]) } else if padded { out.append(UInt8(ascii: "=")) }
        }
        return out
    }
}
