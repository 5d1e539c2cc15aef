import FleetLinks
import Foundation
import Testing

@Suite("Signed links")
struct LinkSignerTests {
    let message = LinkClaims.Message(messageID: "spring:p-ada", profileID: "p-ada", campaignID: "spring", variant: "b")

    @Test("every kind of claim survives signing; a changed byte, another key or an expired token does not verify")
    func roundTrip() throws {
        let signer = LinkSigner(keys: try LinkKeys(parsing: "k2:new,k1:old"), publicURL: "https://m.example/", maxAge: .seconds(86_400))
        #expect(signer.publicURL == "https://m.example")
        let claims: [LinkClaims] = [.subscription(profileID: "p-ada", group: "newsletter", campaignID: "spring"), .open(message),
                                    .click(message, link: 3, url: "https://shop.example/x?a=1&b=2")]
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for c in claims {
            let token = signer.token(c, now: now)
            #expect(token.hasPrefix("k2."))
            #expect(signer.verify(token, now: now)?.claims == c)
            #expect(signer.verify(token, now: now.addingTimeInterval(86_401)) == nil, "expired")
            var bytes = Array(token.utf8)
            bytes[bytes.count / 2] = bytes[bytes.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(signer.verify(String(decoding: bytes, as: UTF8.self), now: now) == nil, "tampered")
            let other = LinkSigner(keys: try LinkKeys(parsing: "k2:other"), publicURL: "https://m.example")
            #expect(other.verify(token, now: now) == nil, "same key id, other secret")
        }
        #expect(signer.verify("k2.e30.AAAA") == nil)
        #expect(signer.verify("") == nil)
        #expect(signer.verify("nonsense") == nil)
    }

    @Test("rotation: a link signed with the old key verifies while that key is listed, and not once it is dropped")
    func rotation() throws {
        let old = LinkSigner(keys: try LinkKeys(parsing: "k1:old"), publicURL: "https://m.example")
        let token = old.token(.open(message))
        let rotated = LinkSigner(keys: try LinkKeys(parsing: "k2:new,k1:old"), publicURL: "https://m.example")
        #expect(rotated.verify(token)?.claims == .open(message))
        #expect(rotated.token(.open(message)).hasPrefix("k2."))
        let dropped = LinkSigner(keys: try LinkKeys(parsing: "k2:new"), publicURL: "https://m.example")
        #expect(dropped.verify(token) == nil)
    }

    @Test("the form token is bound to its link token")
    func formToken() throws {
        let signer = LinkSigner(keys: try LinkKeys(parsing: "k2:new"), publicURL: "https://m.example")
        let a = signer.token(.subscription(profileID: "p-ada", group: "newsletter", campaignID: "c"))
        let b = signer.token(.subscription(profileID: "p-bea", group: "newsletter", campaignID: "c"))
        #expect(signer.verifyFormToken(signer.formToken(for: a), for: a))
        #expect(!signer.verifyFormToken(signer.formToken(for: a), for: b))
        #expect(!signer.verifyFormToken("garbage", for: a))
    }

    @Test("bad key lists and public URLs are refused with their codes")
    func settings() throws {
        for bad in ["", "k1", "k1:", "bad id:x", "k1:a,k1:b"] {
            #expect(throws: LinkError.self) { _ = try LinkKeys(parsing: bad) }
        }
        #expect(throws: LinkError.self) { _ = try LinkSettings.keys([:]) }
        #expect(try LinkSettings.keys(["FLEET_EMAIL_SECRET": "s"]).signing.id == "k0")
        #expect(try LinkSettings.keys(["FLEET_EMAIL_SECRET": "s", "FLEET_LINK_KEYS": "a:1"]).signing.id == "a")
        for bad in ["mail.example.com", "ftp://x", "https://", "https://x/?q=1"] {
            #expect(throws: LinkError.self) { _ = try LinkSettings.publicURL(["FLEET_PUBLIC_URL": bad]) }
        }
        #expect(try LinkSettings.publicURL(["FLEET_PUBLIC_URL": "https://m.example/e/"]) == "https://m.example/e")
        #expect(try LinkSettings.maxAge(["FLEET_LINK_MAX_AGE_DAYS": "2"]) == .seconds(172_800))
        #expect(throws: LinkError.self) { _ = try LinkSettings.maxAge(["FLEET_LINK_MAX_AGE_DAYS": "0"]) }
    }
}
