import _CryptoExtras
import Crypto
import FleetCore
import Foundation
import Synchronization

/// FCM HTTP v1: `POST <base>/v1/projects/<project>/messages:send` with an OAuth 2 access token, got by exchanging a
/// service-account assertion (RS256 JWT: `iss` = client email, `scope` firebase.messaging, `aud` = `token_uri`,
/// one hour) at the account's `token_uri`, and reused until a minute before it expires.
public final class FCMClient: Sendable {
    /// The service-account JSON's fields the client uses. Never logged.
    public struct ServiceAccount: Sendable {
        public var projectID: String
        public var clientEmail: String
        public var privateKeyPEM: String
        public var privateKeyID: String?
        public var tokenURI: String

        /// Reads a service-account JSON (`project_id`, `client_email`, `private_key`, `private_key_id`, `token_uri`).
        public init(json: [UInt8]) throws {
            guard let o = try? JSONValue(parsing: json), let project = o["project_id"]?.stringValue,
                  let email = o["client_email"]?.stringValue, let key = o["private_key"]?.stringValue,
                  let uri = o["token_uri"]?.stringValue else {
                throw PushError("push_configuration",
                                         "FLEET_PUSH_FCM_CREDENTIALS must be a service-account JSON with project_id, client_email, private_key, token_uri")
            }
            projectID = project
            clientEmail = email
            privateKeyPEM = key
            privateKeyID = o["private_key_id"]?.stringValue
            tokenURI = uri
        }
    }

    /// An answer of FCM for one message.
    public struct Response: Sendable, Hashable {
        public var status: Int
        /// `projects/<p>/messages/<id>` when sent.
        public var name: String?
        /// The error's `status` (`INVALID_ARGUMENT`, `UNAVAILABLE`, ...) and the FcmError `errorCode`
        /// (`UNREGISTERED`, `QUOTA_EXCEEDED`, ...).
        public var errorStatus: String?
        public var errorCode: String?
        /// The error's `message` (Google's words; it never holds the token).
        public var message: String?
        public var retryAfter: Int?
    }

    let http: PushHTTP
    let baseURL: String
    let account: ServiceAccount
    private let access = Mutex<(token: String, expires: ContinuousClock.Instant)?>(nil)

    init(http: PushHTTP, baseURL: String, account: ServiceAccount) throws {
        self.http = http
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.account = account
        _ = try Self.signingKey(account.privateKeyPEM)
    }

    static func signingKey(_ pem: String) throws -> _RSA.Signing.PrivateKey {
        do { return try _RSA.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw PushError("push_configuration", "the service account's private_key is not an RSA private key (PEM)")
        }
    }

    /// The access token: the cached one, or one exchanged now.
    func accessToken(renew: Bool = false) async throws -> String {
        let now = ContinuousClock.now
        if !renew, let cached = access.withLock({ $0 }), cached.expires - now > .seconds(60) { return cached.token }
        let iat = Int64(Date().timeIntervalSince1970)
        var header: JSONObject = ["alg": "RS256", "typ": "JWT"]
        if let kid = account.privateKeyID { header["kid"] = .string(kid) }
        let assertion = try PushJWT.rs256(
            header: header,
            claims: ["iss": .string(account.clientEmail), "scope": "https://www.googleapis.com/auth/firebase.messaging",
                     "aud": .string(account.tokenURI), "iat": .int(iat), "exp": .int(iat + 3600)],
            key: Self.signingKey(account.privateKeyPEM))
        let form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=\(assertion)"
        let answer = try await http.post(account.tokenURI, headers: [("content-type", "application/x-www-form-urlencoded")], body: Array(form.utf8))
        guard answer.status == 200, let json = try? JSONValue(parsing: answer.body), let token = json["access_token"]?.stringValue else {
            let error = (try? JSONValue(parsing: answer.body))?["error"]?.stringValue ?? "HTTP \(answer.status)"
            throw PushError(answer.status >= 500 ? "push_unavailable" : "push_auth_failed", "the OAuth token endpoint refused the service account: \(error)")
        }
        let ttl = json["expires_in"]?.intValue ?? 3600
        access.withLock { $0 = (token, now + .seconds(ttl)) }
        return token
    }

    /// Sends `message` (the `message` object of messages:send). A 401 (token expired or revoked) is retried once
    /// with a new access token.
    public func send(message: JSONObject) async throws -> Response {
        var response = try await attempt(message, renew: false)
        if response.status == 401 { response = try await attempt(message, renew: true) }
        return response
    }

    private func attempt(_ message: JSONObject, renew: Bool) async throws -> Response {
        let token = try await accessToken(renew: renew)
        let body = JSONValue.object(["message": .object(message)]).serialized()
        let answer = try await http.post("\(baseURL)/v1/projects/\(account.projectID)/messages:send",
                                         headers: [("authorization", "Bearer \(token)"), ("content-type", "application/json")], body: body)
        let json = try? JSONValue(parsing: answer.body)
        var code: String?
        for detail in json?["error"]?["details"]?.arrayValue ?? [] {
            if let c = detail["errorCode"]?.stringValue { code = c }
        }
        return Response(status: answer.status, name: json?["name"]?.stringValue, errorStatus: json?["error"]?["status"]?.stringValue,
                        errorCode: code, message: json?["error"]?["message"]?.stringValue, retryAfter: answer.headers.first(name: "retry-after").flatMap { Int($0) })
    }
}
