import FleetMarketing
import FleetRuntime
import Foundation

/// The push worker's configuration, from the environment (`FLEET_PUSH_*`); ``settings`` declares each variable with
/// its default (Docs/settings.md is generated from it). Key and credential files are read and checked at start, so
/// that a mistake stops the worker with one line instead of failing every job.
public struct PushSettings: Sendable {
    /// Where pushes go.
    public enum Delivery: Sendable, Hashable {
        /// The rendered requests go back in the result (`output.devices[].request`): nothing is sent.
        case result
        /// APNs and FCM (either may be unconfigured: its devices are then skipped as `not_configured`).
        case send
    }

    public var templatesDirectory: String
    public var delivery: Delivery
    public var apnsURL: String
    public var apns: APNsClient.Credentials?
    public var apnsTopic: String?
    public var fcmURL: String
    public var fcmAccount: FCMClient.ServiceAccount?
    public var caFile: String?
    /// Marketing pushes per person per local day (0: none); a campaign's `frequency_cap` wins.
    public var frequencyCap: Int
    /// `FLEET_FREQUENCY_CAP_ALL`.
    public var frequencyCapAllChannels: Int
    /// Marketing needs an opt-in (`opt-in`) or only the absence of an opt-out (`opt-out`).
    public var requireOptIn: Bool
    /// The default quiet hours of marketing pushes (a template's or campaign's win), nil for none.
    public var quietHours: QuietHours?
    /// Seconds a push is kept by the service for an offline device, unless the template or campaign says otherwise.
    public var ttlSeconds: Int

    public init(templatesDirectory: String, delivery: Delivery = .result) {
        self.templatesDirectory = templatesDirectory
        self.delivery = delivery
        apnsURL = Self.apnsProduction
        fcmURL = Self.fcmProduction
        frequencyCap = 0
        frequencyCapAllChannels = 0
        requireOptIn = false
        quietHours = nil
        ttlSeconds = 86_400
    }

    public static let apnsProduction = "https://api.push.apple.com"
    public static let fcmProduction = "https://fcm.googleapis.com"

    /// Every variable ``fromEnvironment(_:templatesFallback:)`` reads.
    public static let settings: [Setting] = {
        func env(_ name: String, _ fallback: String, _ summary: String, secret: Bool = false) -> Setting {
            Setting(environment: name, defaultValue: fallback, scope: "kind push", summary: summary, isSecret: secret)
        }
        return [
            env("FLEET_PUSH_TEMPLATES", "the templates directory (`FLEET_TEMPLATES`, config `templates`), else `./Templates`", "The directory holding `push/<name>/`."),
            env("FLEET_PUSH_DELIVERY", "`send`", "`send` (to APNs and FCM) or `result` (nothing is sent: each device's request goes back in the result, for dry runs)."),
            env("FLEET_PUSH_APNS_URL", "`https://api.push.apple.com`", "APNs' base URL: production; `https://api.sandbox.push.apple.com` for development builds; a local emulator or gateway."),
            env("FLEET_PUSH_APNS_KEY_FILE", "none (iOS devices are skipped as `not_configured`)", "The APNs token-auth key (`AuthKey_<id>.p8`, PKCS#8 PEM of a P-256 key). Read at start, never logged.", secret: true),
            env("FLEET_PUSH_APNS_KEY_ID", "none", "The key's 10-character id (the provider token's `kid`); required with the key file."),
            env("FLEET_PUSH_APNS_TEAM_ID", "none", "The Apple team id (the provider token's `iss`); required with the key file."),
            env("FLEET_PUSH_APNS_TOPIC", "none", "The app's bundle id (`apns-topic`); required with the key file."),
            env("FLEET_PUSH_FCM_CREDENTIALS", "none (Android devices are skipped as `not_configured`)", "A Google service-account JSON (`project_id`, `client_email`, `private_key`, `token_uri`). Read at start, never logged.", secret: true),
            env("FLEET_PUSH_FCM_URL", "`https://fcm.googleapis.com`", "FCM's base URL (`/v1/projects/<project>/messages:send` is added)."),
            env("FLEET_PUSH_CA_FILE", "the system trust store only", "A PEM file of CA certificates trusted besides the system's (emulators, private gateways)."),
            env("FLEET_PUSH_FREQUENCY_CAP", "`0` (no cap)", "Marketing pushes per person per local day; a campaign's `frequency_cap` wins."),
            env("FLEET_PUSH_CONSENT", "`opt-out`", "`opt-out` (no consent record on channel `push`: may send) or `opt-in` (marketing needs an opt-in)."),
            env("FLEET_PUSH_QUIET_HOURS", "none", "Default quiet hours of marketing pushes in each person's time zone, `HH:MM-HH:MM` (e.g. `21:00-08:00`); a template's `quiet_hours` and a campaign's win."),
            env("FLEET_PUSH_TTL", "`86400`", "Seconds APNs and FCM keep a push for an offline device (`apns-expiration`, `android.ttl`), unless the template or campaign says otherwise; `0`: deliver now or never."),
        ]
    }()

    /// The settings of `environment`; a wrong value throws ``PushError`` `push_configuration` naming the variable.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       templatesFallback: String? = nil) throws(PushError) -> PushSettings {
        func get(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        func bad(_ message: String) -> PushError { PushError("push_configuration", message) }
        func int(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws(PushError) -> Int {
            guard let raw = get(name) else { return fallback }
            guard let v = Int(raw), range.contains(v) else { throw bad("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)") }
            return v
        }
        func file(_ name: String) throws(PushError) -> String? {
            guard let path = get(name) else { return nil }
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw bad("\(name) is not a readable file")
            }
            return text
        }
        let cwd = FileManager.default.currentDirectoryPath
        var s = PushSettings(templatesDirectory: get("FLEET_PUSH_TEMPLATES") ?? templatesFallback ?? cwd + "/Templates")
        switch get("FLEET_PUSH_DELIVERY") ?? "send" {
        case "send": s.delivery = .send
        case "result": s.delivery = .result
        case let other: throw bad("FLEET_PUSH_DELIVERY must be send or result, not '\(other)'")
        }
        s.apnsURL = get("FLEET_PUSH_APNS_URL") ?? apnsProduction
        s.fcmURL = get("FLEET_PUSH_FCM_URL") ?? fcmProduction
        for (name, url) in [("FLEET_PUSH_APNS_URL", s.apnsURL), ("FLEET_PUSH_FCM_URL", s.fcmURL)] where !url.hasPrefix("https://") {
            throw bad("\(name) must be an https:// URL (APNs and FCM speak HTTP/2 over TLS)")
        }
        if let pem = try file("FLEET_PUSH_APNS_KEY_FILE") {
            guard let keyID = get("FLEET_PUSH_APNS_KEY_ID"), let teamID = get("FLEET_PUSH_APNS_TEAM_ID") else {
                throw bad("FLEET_PUSH_APNS_KEY_FILE needs FLEET_PUSH_APNS_KEY_ID and FLEET_PUSH_APNS_TEAM_ID")
            }
            guard let topic = get("FLEET_PUSH_APNS_TOPIC") else { throw bad("FLEET_PUSH_APNS_KEY_FILE needs FLEET_PUSH_APNS_TOPIC (the app's bundle id)") }
            do { _ = try APNsClient.signingKey(pem) } catch { throw error as? PushError ?? bad("FLEET_PUSH_APNS_KEY_FILE is unusable") }
            s.apns = APNsClient.Credentials(keyID: keyID, teamID: teamID, keyPEM: pem)
            s.apnsTopic = topic
        }
        if let json = try file("FLEET_PUSH_FCM_CREDENTIALS") {
            do {
                let account = try FCMClient.ServiceAccount(json: Array(json.utf8))
                _ = try FCMClient.signingKey(account.privateKeyPEM)
                s.fcmAccount = account
            } catch {
                throw error as? PushError ?? bad("FLEET_PUSH_FCM_CREDENTIALS is unusable")
            }
        }
        if let ca = get("FLEET_PUSH_CA_FILE") {
            guard FileManager.default.isReadableFile(atPath: ca) else { throw bad("FLEET_PUSH_CA_FILE is not a readable file") }
            s.caFile = ca
        }
        s.frequencyCap = try int("FLEET_PUSH_FREQUENCY_CAP", 0, 0...10_000)
        guard let all = FrequencyCap.allChannelsLimit(environment) else { throw bad("FLEET_FREQUENCY_CAP_ALL must be a non-negative integer") }
        s.frequencyCapAllChannels = all
        switch get("FLEET_PUSH_CONSENT") ?? "opt-out" {
        case "opt-out": s.requireOptIn = false
        case "opt-in": s.requireOptIn = true
        default: throw bad("FLEET_PUSH_CONSENT must be opt-out or opt-in")
        }
        if let raw = get("FLEET_PUSH_QUIET_HOURS") {
            guard let q = QuietHours(raw) else { throw bad("FLEET_PUSH_QUIET_HOURS must be HH:MM-HH:MM (e.g. 21:00-08:00)") }
            s.quietHours = q
        }
        s.ttlSeconds = try int("FLEET_PUSH_TTL", 86_400, 0...2_419_200)
        return s
    }
}
