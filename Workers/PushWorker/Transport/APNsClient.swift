import Crypto
import FleetCore
import Foundation
import Synchronization

/// APNs' provider API over HTTP/2 with token authentication: `POST <base>/3/device/<token>` with an ES256
/// provider token (JWT: `kid`, `iss` = team id, `iat`), made once and reused until it is 40 minutes old (APNs
/// refuses a new token more often than every 20 minutes and an older one than 60), or made anew after
/// `ExpiredProviderToken`.
public final class APNsClient: Sendable {
    public struct Credentials: Sendable {
        public var keyID: String
        public var teamID: String
        /// The `.p8` key (PKCS#8 PEM). Never logged.
        public var keyPEM: String

        public init(keyID: String, teamID: String, keyPEM: String) {
            self.keyID = keyID
            self.teamID = teamID
            self.keyPEM = keyPEM
        }
    }

    /// An answer of APNs for one device.
    public struct Response: Sendable, Hashable {
        public var status: Int
        public var apnsID: String?
        /// The `reason` of an error body (`BadDeviceToken`, `Unregistered`, ...).
        public var reason: String?
        /// `Unregistered`: when the device stopped being valid (milliseconds since the epoch).
        public var timestamp: Int64?
        public var retryAfter: Int?
    }

    let http: PushHTTP
    let baseURL: String
    let credentials: Credentials
    let key: String
    private let token = Mutex<(jwt: String, madeAt: ContinuousClock.Instant)?>(nil)
    /// How long a provider token is reused.
    static let tokenLifetime: Duration = .seconds(40 * 60)

    init(http: PushHTTP, baseURL: String, credentials: Credentials) throws {
        self.http = http
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.credentials = credentials
        key = credentials.keyPEM
        _ = try Self.signingKey(credentials.keyPEM)
    }

    static func signingKey(_ pem: String) throws -> P256.Signing.PrivateKey {
        do { return try P256.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw PushError("push_configuration", "FLEET_PUSH_APNS_KEY_FILE is not a P-256 private key (.p8 PEM)")
        }
    }

    /// The provider token: the cached one, or a new one when it is too old or `renew` (after ExpiredProviderToken).
    func providerToken(renew: Bool = false) throws -> String {
        let now = ContinuousClock.now
        if !renew, let cached = token.withLock({ $0 }), now - cached.madeAt < Self.tokenLifetime { return cached.jwt }
        let jwt = try PushJWT.es256(header: ["alg": "ES256", "kid": .string(credentials.keyID)],
                                    claims: ["iss": .string(credentials.teamID), "iat": .int(Int64(Date().timeIntervalSince1970))],
                                    key: Self.signingKey(key))
        token.withLock { $0 = (jwt, now) }
        return jwt
    }

    /// Sends `payload` to `device` with the APNs headers given (`apns-topic`, `apns-push-type`, `apns-priority`,
    /// `apns-expiration`, `apns-collapse-id`, `apns-id`). An `ExpiredProviderToken` answer is retried once with a
    /// new token.
    public func send(device: String, headers: [(String, String)], payload: [UInt8]) async throws -> Response {
        var response = try await attempt(device: device, headers: headers, payload: payload, renew: false)
        if response.status == 403 && response.reason == "ExpiredProviderToken" {
            response = try await attempt(device: device, headers: headers, payload: payload, renew: true)
        }
        return response
    }

    private func attempt(device: String, headers: [(String, String)], payload: [UInt8], renew: Bool) async throws -> Response {
        let jwt = try providerToken(renew: renew)
        let answer = try await http.post("\(baseURL)/3/device/\(device)", headers: [("authorization", "bearer \(jwt)")] + headers, body: payload)
        let json = answer.body.isEmpty ? nil : try? JSONValue(parsing: answer.body)
        return Response(status: answer.status, apnsID: answer.headers.first(name: "apns-id"), reason: json?["reason"]?.stringValue,
                        timestamp: json?["timestamp"]?.intValue, retryAfter: answer.headers.first(name: "retry-after").flatMap { Int($0) })
    }
}
