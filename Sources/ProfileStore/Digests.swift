import Crypto

/// SHA-256 through swift-crypto: the stored hashes of op ids and of suppressed addresses, and import op ids.
public enum Digests {
    /// The SHA-256 digest of `text`'s UTF-8 bytes.
    public static func sha256(_ text: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(text.utf8)))
    }

    /// The SHA-256 digest of `text`'s UTF-8 bytes, in lower-case hex.
    public static func sha256Hex(_ text: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in SHA256.hash(data: Array(text.utf8)) {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
