import Crypto
import FleetCore
import Foundation
import ProfileStore

/// Sends one push to one device through APNs (platform `ios`) or FCM (`android`) and reads the answer as a
/// ``DeviceOutcome``. One HTTP/2 client for both services (connections reused, streams multiplexed).
public final class PushSender: Sendable {
    /// How one device's push ended.
    public enum DeviceOutcome: Sendable, Hashable {
        /// Accepted: the apns-id or the FCM message name.
        case delivered(id: String)
        /// The token is dead (APNs 410 Unregistered with its time, 400 BadDeviceToken; FCM UNREGISTERED, an
        /// invalid registration token): mark it invalid, never send to it again.
        case invalid(reason: String, since: Int64?)
        /// Try again later (429, 500, 503, QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL), after `retryAfter` seconds if the
        /// service said so.
        case retry(reason: String, retryAfter: Int?)
        /// Refused for a reason a retry does not fix (a bad topic, our credentials, a payload the service refuses).
        case rejected(status: Int, reason: String)
    }

    let http: PushHTTP?
    let apns: APNsClient?
    let fcm: FCMClient?
    let topic: String?

    /// A sender with the settings' credentials (nil where a service is not configured).
    public init(settings: PushSettings) throws {
        guard settings.delivery == .send, settings.apns != nil || settings.fcmAccount != nil else {
            http = nil; apns = nil; fcm = nil; topic = nil
            return
        }
        let http = try PushHTTP(caFile: settings.caFile)
        self.http = http
        apns = try settings.apns.map { try APNsClient(http: http, baseURL: settings.apnsURL, credentials: $0) }
        fcm = try settings.fcmAccount.map { try FCMClient(http: http, baseURL: settings.fcmURL, account: $0) }
        topic = settings.apnsTopic
    }

    /// Whether pushes to `platform` can be sent.
    public func isConfigured(platform: String) -> Bool {
        switch platform {
        case "ios": apns != nil
        case "android": fcm != nil
        default: false
        }
    }

    /// The headers of an APNs request (without `authorization`).
    public static func apnsHeaders(topic: String, apnsID: String, pushType: String, highPriority: Bool, expiration: Int64,
                                   collapseID: String?) -> [(String, String)] {
        var headers = [("apns-topic", topic), ("apns-push-type", pushType), ("apns-priority", highPriority ? "10" : "5"),
                       ("apns-expiration", String(expiration)), ("apns-id", apnsID)]
        if let collapseID { headers.append(("apns-collapse-id", collapseID)) }
        return headers
    }

    /// The apns-id of a job's push to a device: a UUID from SHA-256(job id, token), the same in every run of the job,
    /// so that a resend is recognisable (and FCM gets it as `fleet_message_id`).
    public static func messageID(jobID: String, token: String) -> String {
        var bytes = Array(SHA256.hash(data: Data("\(jobID)\u{0}\(token)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8 (RFC 9562: custom)
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // the RFC variant
        // Hand-written hex: String(format:) took a tenth of the worker's CPU per push (perf, `fleet bench push`).
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (i, b) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(upperHex[Int(b >> 4)])
            out.append(upperHex[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let upperHex = Array("0123456789ABCDEF".utf8)
    private static let lowerHex = Array("0123456789abcdef".utf8)

    /// A device's id in results and logs: 16 hex digits of SHA-256(token). The token itself is personal data.
    public static func deviceID(_ token: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(16)
        for b in SHA256.hash(data: Data(token.utf8)).prefix(8) {
            out.append(lowerHex[Int(b >> 4)])
            out.append(lowerHex[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Sends to an iOS device.
    func sendAPNs(token: String, headers: [(String, String)], payload: [UInt8]) async throws -> DeviceOutcome {
        guard let apns else { return .rejected(status: 0, reason: "not_configured") }
        let r = try await apns.send(device: token, headers: headers, payload: payload)
        switch (r.status, r.reason) {
        case (200, _): return .delivered(id: r.apnsID ?? headers.first { $0.0 == "apns-id" }?.1 ?? "")
        case (410, _): return .invalid(reason: r.reason ?? "Unregistered", since: r.timestamp)
        case (400, "BadDeviceToken"?), (400, "DeviceTokenNotForTopic"?): return .invalid(reason: r.reason!, since: nil)
        case (429, _), (500, _), (503, _): return .retry(reason: r.reason ?? "HTTP \(r.status)", retryAfter: r.retryAfter)
        default: return .rejected(status: r.status, reason: r.reason ?? "HTTP \(r.status)")
        }
    }

    /// Sends to an Android device (`message` without the token).
    func sendFCM(token: String, message: JSONObject) async throws -> DeviceOutcome {
        guard let fcm else { return .rejected(status: 0, reason: "not_configured") }
        var m = message
        m["token"] = .string(token)
        let r = try await fcm.send(message: m)
        let reason = r.errorCode ?? r.errorStatus ?? "HTTP \(r.status)"
        switch r.status {
        case 200: return .delivered(id: r.name ?? "")
        case 404 where r.errorCode == "UNREGISTERED": return .invalid(reason: "UNREGISTERED", since: nil)
        case 400 where r.errorCode == "INVALID_ARGUMENT" && r.message?.contains("registration token") == true:
            return .invalid(reason: "INVALID_ARGUMENT", since: nil)
        case 429, 500, 503: return .retry(reason: reason, retryAfter: r.retryAfter)
        default: return .rejected(status: r.status, reason: reason)
        }
    }

    public func shutdown() async {
        await http?.shutdown()
    }
}
