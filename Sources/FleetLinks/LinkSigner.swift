import Crypto
import FleetJSON

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Signs and verifies the mails' links: `<public URL>/u/<token>`, `/p/<token>`, `/o/<token>.gif`, `/c/<token>`.
///
/// A token is `<key id>.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, key id "." claims part))>`: the key id
/// picks the verifying key (rotation, ``LinkKeys``), the claims carry the issue time, and a token older than
/// `maxAge` is refused like a forged one. Verification compares the MAC in constant time. The email worker signs;
/// `fleet serve` verifies with the same keys.
public struct LinkSigner: Sendable {
    public let keys: LinkKeys
    /// The public base of the links, without a trailing `/` (`https://mail.example.com`).
    public let publicURL: String
    /// How long a link is accepted after it was signed.
    public let maxAge: Duration

    public init(keys: LinkKeys, publicURL: String, maxAge: Duration = .seconds(365 * 86_400)) {
        self.keys = keys
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.maxAge = maxAge
    }

    /// The token of `claims`, issued at `now`.
    public func token(_ claims: LinkClaims, now: Date = Date()) -> String {
        let key = keys.signing
        let payload = Self.base64url(claims.json(issuedAt: Int64(now.timeIntervalSince1970)).serialized())
        let signed = key.id + "." + payload
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signed.utf8), using: key.symmetric)
        return signed + "." + Self.base64url(Array(mac))
    }

    /// The claims of a valid token and when it was issued; nil for a malformed, forged, unknown-key or expired one
    /// (the caller cannot tell which, nor can the person who sent it).
    public func verify(_ token: Substring, now: Date = Date()) -> (claims: LinkClaims, issuedAt: Date)? {
        // Byte offsets of the two dots (the token is ASCII when valid).
        let utf8 = token.utf8
        guard utf8.count <= 4096, let first = utf8.firstIndex(of: UInt8(ascii: ".")),
              let second = utf8[utf8.index(after: first)...].firstIndex(of: UInt8(ascii: ".")),
              !utf8[utf8.index(after: second)...].contains(UInt8(ascii: ".")) else { return nil }
        guard let key = keys.key(id: Substring(utf8[..<first])),
              let mac = Base64URL.decode(Substring(utf8[utf8.index(after: second)...])), mac.count == SHA256.byteCount,
              HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array(utf8[..<second]), using: key.symmetric),
              let payload = Base64URL.decode(Substring(utf8[utf8.index(after: first)..<second])),
              let json = try? JSONValue(parsing: payload), let (claims, issued) = LinkClaims.parse(json) else { return nil }
        let age = now.timeIntervalSince1970 - Double(issued)
        // A little slack for clocks of other hosts a few seconds ahead.
        guard age >= -300, age <= Double(maxAge.components.seconds) else { return nil }
        return (claims, Date(timeIntervalSince1970: Double(issued)))
    }

    public func verify(_ token: String, now: Date = Date()) -> (claims: LinkClaims, issuedAt: Date)? {
        verify(Substring(token), now: now)
    }

    // MARK: - URLs

    /// The one-click unsubscribe URL (`List-Unsubscribe`, and the mail's unsubscribe link).
    public func unsubscribeURL(token: String) -> String { "\(publicURL)/u/\(token)" }
    /// The preference-centre URL (same token as the unsubscribe URL).
    public func preferencesURL(token: String) -> String { "\(publicURL)/p/\(token)" }
    /// The open pixel of a message.
    public func openURL(_ message: LinkClaims.Message, now: Date = Date()) -> String {
        "\(publicURL)/o/\(token(.open(message), now: now)).gif"
    }
    /// The tracked form of link `index` (to `url`) of a message.
    public func clickURL(_ message: LinkClaims.Message, link index: Int, url: String, now: Date = Date()) -> String {
        "\(publicURL)/c/\(token(.click(message, link: index, url: url), now: now))"
    }

    // MARK: - base64url

    static func base64url(_ bytes: [UInt8]) -> String { Base64URL.encode(bytes) }

    static func unbase64url(_ text: Substring) -> [UInt8]? { Base64URL.decode(text) }
}

extension LinkSigner {
    /// The preference centre form's CSRF value, bound to the link token (HMAC of it under the signing key).
    public func formToken(for token: String) -> String {
        formToken(for: token, key: keys.signing)
    }

    /// Whether `value` is the form token of `token` under one of the keys (constant-time comparison).
    public func verifyFormToken(_ value: String, for token: String) -> Bool {
        guard let mac = Self.unbase64url(Substring(value)) else { return false }
        return keys.keys.contains { key in
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array(("form\n" + token).utf8), using: key.symmetric)
        }
    }

    private func formToken(for token: String, key: LinkKeys.Key) -> String {
        Self.base64url(Array(HMAC<SHA256>.authenticationCode(for: Array(("form\n" + token).utf8), using: key.symmetric)))
    }
}
