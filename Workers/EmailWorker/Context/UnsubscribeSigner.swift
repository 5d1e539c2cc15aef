import Crypto
import Foundation

/// Signed one-click unsubscribe links (RFC 8058): `BASE/unsubscribe?t=TOKEN`, where TOKEN is
/// `base64url(profile_id \n group \n campaign_id) . base64url(HMAC-SHA256(secret, payload))`.
///
/// The endpoint that receives the POST verifies the token with ``verify(_:)`` and records the opt-out for the
/// group; the token identifies the person by profile id only (never the address).
public struct UnsubscribeSigner: Sendable {
    /// What a token says.
    public struct Claims: Sendable, Hashable {
        public var profileID: String
        public var group: String
        public var campaignID: String

        public init(profileID: String, group: String, campaignID: String) {
            self.profileID = profileID
            self.group = group
            self.campaignID = campaignID
        }
    }

    private let secret: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: secret) }
    /// The base of the links (`https://shop.example.com/email`).
    public let baseURL: String

    public init(secret: String, baseURL: String) {
        self.secret = Array(secret.utf8)
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    /// The token for a person, a subscription group and a campaign.
    public func token(profileID: String, group: String, campaignID: String) -> String {
        let payload = Array("\(profileID)\n\(group)\n\(campaignID)".utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: payload, using: key)
        var out = Base64.encode(payload, alphabet: Base64.url, padded: false)
        out.append(UInt8(ascii: "."))
        mac.withUnsafeBytes { out += Base64.encode($0, alphabet: Base64.url, padded: false) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The unsubscribe and preference-centre URLs of one message (one token for both).
    public func links(profileID: String, group: String, campaignID: String) -> (unsubscribe: String, preferences: String) {
        let t = token(profileID: profileID, group: group, campaignID: campaignID)
        return ("\(baseURL)/unsubscribe?t=\(t)", "\(baseURL)/preferences?t=\(t)")
    }

    /// The one-click unsubscribe URL.
    public func unsubscribeURL(profileID: String, group: String, campaignID: String) -> String {
        links(profileID: profileID, group: group, campaignID: campaignID).unsubscribe
    }

    /// The preference-centre URL (same token: it proves who the person is).
    public func preferencesURL(profileID: String, group: String, campaignID: String) -> String {
        links(profileID: profileID, group: group, campaignID: campaignID).preferences
    }

    /// The claims of a valid token, or nil (bad format or signature; compared in constant time).
    public func verify(_ token: String) -> Claims? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Self.unbase64url(parts[0]), let mac = Self.unbase64url(parts[1]) else { return nil }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key) else { return nil }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard fields.count == 3 else { return nil }
        return Claims(profileID: String(fields[0]), group: String(fields[1]), campaignID: String(fields[2]))
    }

    static func unbase64url(_ text: Substring) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }
}
