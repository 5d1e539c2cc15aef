import Crypto

/// The HMAC-SHA256 keys of the mails' links, with key ids, for rotation: the first key signs new links, every key
/// listed verifies. Rotating: put the new key first and keep the old one listed for as long as its links must work
/// (at least `FLEET_LINK_MAX_AGE_DAYS`), then drop it.
///
/// Written as `FLEET_LINK_KEYS=id:secret[,id:secret...]` (ids of letters, digits, `-` and `_`); a fleet with only
/// `FLEET_EMAIL_SECRET` has the one key of id `k0` with that secret.
public struct LinkKeys: Sendable {
    public struct Key: Sendable {
        public let id: String
        public let secret: [UInt8]
        /// A CryptoKit key of the secret (not stored: `SymmetricKey` is not `Sendable` in swift-crypto 3).
        var symmetric: SymmetricKey { SymmetricKey(data: secret) }

        public init(id: String, secret: [UInt8]) {
            self.id = id
            self.secret = secret
        }
    }

    /// The signing key first.
    public let keys: [Key]

    /// Keys in order; the first signs. Throws ``LinkError`` `invalid_keys` for none, an empty secret, a bad id or
    /// an id given twice.
    public init(_ keys: [Key]) throws(LinkError) {
        guard !keys.isEmpty else { throw LinkError(code: "invalid_keys", message: "no link key") }
        var seen = Set<String>()
        for key in keys {
            guard !key.id.isEmpty, key.id.utf8.count <= 32,
                  key.id.utf8.allSatisfy({ Self.idBytes.contains($0) }) else {
                throw LinkError(code: "invalid_keys", message: "a link key id must be 1 to 32 letters, digits, '-' or '_'")
            }
            guard !key.secret.isEmpty else { throw LinkError(code: "invalid_keys", message: "link key \(key.id) has an empty secret") }
            guard seen.insert(key.id).inserted else { throw LinkError(code: "invalid_keys", message: "link key id \(key.id) given twice") }
        }
        self.keys = keys
    }

    /// One key of id `k0`.
    public init(secret: String) throws(LinkError) {
        try self.init([Key(id: "k0", secret: Array(secret.utf8))])
    }

    /// Parses `id:secret,id:secret` (the secret is everything after the first `:` up to the next `,`).
    public init(parsing text: String) throws(LinkError) {
        var keys: [Key] = []
        for part in text.split(separator: ",") {
            let pair = part.split(separator: ":", maxSplits: 1)
            guard pair.count == 2 else {
                throw LinkError(code: "invalid_keys", message: "FLEET_LINK_KEYS must be id:secret[,id:secret...]")
            }
            keys.append(Key(id: String(pair[0]).trimmed, secret: Array(String(pair[1]).trimmed.utf8)))
        }
        try self.init(keys)
    }

    /// The key that signs.
    public var signing: Key { keys[0] }

    /// The key of `id`, if listed.
    public func key(id: Substring) -> Key? { keys.first { $0.id.utf8.elementsEqual(id.utf8) } }

    static let idBytes = Set(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".utf8))
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
