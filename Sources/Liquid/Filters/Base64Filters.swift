/// The Base64 filters, as Ruby's `Base64.strict_encode64` / `strict_decode64` / `urlsafe_encode64` /
/// `urlsafe_decode64`. Decoded bytes that are not UTF-8 become U+FFFD (Ruby returns a binary string).
enum Base64Filters {
    static let all: [String: LiquidFilterFunction] = [
        "base64_encode": encode, "base64_decode": decode,
        "base64_url_safe_encode": urlSafeEncode, "base64_url_safe_decode": urlSafeDecode,
    ]

    static let standardAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let urlSafeAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ s: String, alphabet: [UInt8]) -> String {
        let b = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity((b.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < b.count {
            let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = b.count - i
        if rest == 1 {
            let n = UInt32(b[i]) << 16
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(contentsOf: "==".utf8)
        } else if rest == 2 {
            let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func sextet(_ c: UInt8) -> UInt32? {
        switch c {
        case 65...90: UInt32(c - 65)
        case 97...122: UInt32(c - 71)
        case 48...57: UInt32(c + 4)
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }

    /// Strict decoding: length a multiple of 4, padding only at the end, unused bits zero.
    static func strictDecode(_ b: [UInt8]) -> [UInt8]? {
        guard b.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(b.count / 4 * 3)
        var i = 0
        while i < b.count {
            let last = i + 4 == b.count
            guard let a = sextet(b[i]), let c = sextet(b[i + 1]) else { return nil }
            if last && b[i + 2] == UInt8(ascii: "=") {
                guard b[i + 3] == UInt8(ascii: "="), c & 15 == 0 else { return nil }
                out.append(UInt8(a << 2 | c >> 4))
            } else if last && b[i + 3] == UInt8(ascii: "=") {
                guard let d = sextet(b[i + 2]), d & 3 == 0 else { return nil }
                let n = a << 18 | c << 12 | d << 6
                out.append(UInt8(n >> 16 & 255))
                out.append(UInt8(n >> 8 & 255))
            } else {
                guard let d = sextet(b[i + 2]), let e = sextet(b[i + 3]) else { return nil }
                let n = a << 18 | c << 12 | d << 6 | e
                out.append(UInt8(n >> 16 & 255))
                out.append(UInt8(n >> 8 & 255))
                out.append(UInt8(n & 255))
            }
            i += 4
        }
        return out
    }

    /// `base64_encode`.
    static let encode: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(encode(input.rubyToS, alphabet: standardAlphabet))
    }

    /// `base64_decode`: raises "invalid base64 provided to base64_decode" on malformed input.
    static let decode: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        guard let bytes = strictDecode(Array(input.rubyToS.utf8)) else {
            throw LiquidFilterError(.argument, "invalid base64 provided to base64_decode")
        }
        return .string(String(decoding: bytes, as: UTF8.self))
    }

    /// `base64_url_safe_encode`: `-` and `_` for `+` and `/`, padded.
    static let urlSafeEncode: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .string(encode(input.rubyToS, alphabet: urlSafeAlphabet))
    }

    /// `base64_url_safe_decode`: padding optional (added when the length is not a multiple of 4 and the
    /// input does not end in `=`).
    static let urlSafeDecode: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        var b = Array(input.rubyToS.utf8)
        if b.last != UInt8(ascii: "=") && b.count % 4 != 0 {
            b.append(contentsOf: repeatElement(UInt8(ascii: "="), count: 4 - b.count % 4))
        }
        for i in b.indices {
            if b[i] == UInt8(ascii: "-") {
                b[i] = UInt8(ascii: "+")
            } else if b[i] == UInt8(ascii: "_") {
                b[i] = UInt8(ascii: "/")
            }
        }
        guard let bytes = strictDecode(b) else {
            throw LiquidFilterError(.argument, "invalid base64 provided to base64_url_safe_decode")
        }
        return .string(String(decoding: bytes, as: UTF8.self))
    }
}
