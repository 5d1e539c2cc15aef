import _CryptoExtras
import Crypto
import FleetCore
import Foundation

/// The JSON Web Tokens of the push services (RFC 7515/7519, compact form), signed here with swift-crypto:
/// ES256 for APNs provider tokens, RS256 for the FCM service account's OAuth assertion. Hand-written: jwt-kit 5
/// wants swift-crypto 4 and the fleet is on 3; a JWT is a header, claims and a signature over them.
enum PushJWT {
    /// `header.claims.signature` with ES256 (the signature is r‖s, 64 bytes, as JWS wants).
    static func es256(header: JSONObject, claims: JSONObject, key: P256.Signing.PrivateKey) throws -> String {
        let input = signingInput(header: header, claims: claims)
        let signature = try key.signature(for: Array(input.utf8))
        return input + "." + base64url(Array(signature.rawRepresentation))
    }

    /// `header.claims.signature` with RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
    static func rs256(header: JSONObject, claims: JSONObject, key: _RSA.Signing.PrivateKey) throws -> String {
        let input = signingInput(header: header, claims: claims)
        let signature = try key.signature(for: SHA256.hash(data: Array(input.utf8)), padding: .insecurePKCS1v1_5)
        return input + "." + base64url(Array(signature.rawRepresentation))
    }

    static func signingInput(header: JSONObject, claims: JSONObject) -> String {
        base64url(JSONValue.object(header).serialized()) + "." + base64url(JSONValue.object(claims).serialized())
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
