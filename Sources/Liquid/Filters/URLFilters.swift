/// The URL filters: `url_encode` (Ruby's `CGI.escape`) and `url_decode` (`CGI.unescape`).
enum URLFilters {
    static let all: [String: LiquidFilterFunction] = ["url_encode": urlEncode, "url_decode": urlDecode]

    @inline(__always)
    static func isUnreserved(_ c: UInt8) -> Bool {
        (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == UInt8(ascii: "_")
            || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "~")
    }

    static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// `url_encode`: every byte but `a-zA-Z0-9_.-~` percent-encoded (upper-case hex), space as `+`; nil
    /// stays nil.
    static let urlEncode: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        if case .nil = input { return .nil }
        let s = input.rubyToS
        let u = s.utf8
        guard u.contains(where: { !isUnreserved($0) }) else { return .string(s) }
        var out: [UInt8] = []
        out.reserveCapacity(u.count * 3)
        for c in u {
            if isUnreserved(c) {
                out.append(c)
            } else if c == 0x20 {
                out.append(UInt8(ascii: "+"))
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(c >> 4)])
                out.append(hexDigits[Int(c & 15)])
            }
        }
        return .string(String(decoding: out, as: UTF8.self))
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }

    /// `url_decode`: `+` as space and `%XX` as that byte (malformed `%` kept); raises "invalid byte sequence
    /// in UTF-8" when the result is not UTF-8.
    static let urlDecode: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        if case .nil = input { return .nil }
        let s = input.rubyToS
        let b = Array(s.utf8)
        guard b.contains(UInt8(ascii: "%")) || b.contains(UInt8(ascii: "+")) else { return .string(s) }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "+") {
                out.append(0x20)
            } else if c == UInt8(ascii: "%"), i + 2 < b.count, let h = hexValue(b[i + 1]), let l = hexValue(b[i + 2]) {
                out.append(h << 4 | l)
                i += 2
            } else {
                out.append(c)
            }
            i += 1
        }
        guard let decoded = String(validating: out, as: UTF8.self) else {
            throw LiquidFilterError(.argument, "invalid byte sequence in UTF-8")
        }
        return .string(decoded)
    }
}
