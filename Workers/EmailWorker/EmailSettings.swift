import Foundation

/// The email worker's configuration, from the environment (`FLEET_EMAIL_*`):
///
/// | variable | meaning | default |
/// | --- | --- | --- |
/// | `FLEET_EMAIL_TEMPLATES` | the `Templates/` directory | `./Templates` |
/// | `FLEET_EMAIL_DELIVERY` | `result`, `outbox` or `smtp` | `result` |
/// | `FLEET_EMAIL_OUTBOX` | the directory of `.eml` files (delivery `outbox`) | `./outbox` |
/// | `FLEET_EMAIL_SMTP_HOST`, `_PORT` | the relay (delivery `smtp`) | `127.0.0.1`, `25` |
/// | `FLEET_EMAIL_SMTP_USER`, `_PASSWORD`, `_AUTH` | AUTH PLAIN (default) or LOGIN | none |
/// | `FLEET_EMAIL_SMTP_POOL` | sessions kept open | `4` |
/// | `FLEET_EMAIL_SMTP_STARTTLS` | `off` only (STARTTLS is not implemented yet; `require` is refused) | `off` |
/// | `FLEET_EMAIL_SECRET` | the HMAC secret of unsubscribe tokens (required) | none |
/// | `FLEET_EMAIL_BASE_URL` | base of unsubscribe and preference-centre links | `https://email.example.com` |
/// | `FLEET_EMAIL_UTM` | query parameters added to html links (`off`: none); `utm_campaign` is the campaign id | `utm_source=email&utm_medium=email` |
/// | `FLEET_EMAIL_PIXEL_URL` | open-tracking pixel base URL (absent: no pixel) | none |
/// | `FLEET_EMAIL_FREQUENCY_CAP` | marketing mails per person per local day (`0`: no cap); campaigns may set `frequency_cap` | `0` |
/// | `FLEET_EMAIL_CONSENT` | `opt-out` (no record = may send) or `opt-in` (marketing needs an opt-in) | `opt-out` |
public struct EmailSettings: Sendable {
    /// How rendered messages leave the worker.
    public enum Delivery: Sendable, Hashable {
        /// The MIME text goes back in the result (`output.mime`).
        case result
        /// `.eml` files in a directory, named by job id (a dry run).
        case outbox(String)
        /// An SMTP relay.
        case smtp(SMTPSettings)
    }

    public var templatesDirectory: String
    public var delivery: Delivery
    public var secret: String
    public var baseURL: String
    public var utm: [(String, String)]
    public var pixelURL: String?
    public var frequencyCap: Int
    public var requireOptIn: Bool

    public init(templatesDirectory: String, delivery: Delivery = .result, secret: String,
                baseURL: String = "https://email.example.com", utm: [(String, String)] = [("utm_source", "email"), ("utm_medium", "email")],
                pixelURL: String? = nil, frequencyCap: Int = 0, requireOptIn: Bool = false) {
        self.templatesDirectory = templatesDirectory
        self.delivery = delivery
        self.secret = secret
        self.baseURL = baseURL
        self.utm = utm
        self.pixelURL = pixelURL
        self.frequencyCap = frequencyCap
        self.requireOptIn = requireOptIn
    }

    /// The settings of `environment`. Throws ``EmailError`` `email_configuration` naming the variable.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> EmailSettings {
        func get(_ key: String) -> String? { environment["FLEET_EMAIL_\(key)"].flatMap { $0.isEmpty ? nil : $0 } }
        func int(_ key: String, _ fallback: Int) throws -> Int {
            guard let raw = get(key) else { return fallback }
            guard let v = Int(raw), v >= 0 else { throw EmailError.configuration("FLEET_EMAIL_\(key) must be a non-negative integer") }
            return v
        }
        guard let secret = get("SECRET") else {
            throw EmailError.configuration("FLEET_EMAIL_SECRET is not set (the HMAC secret of unsubscribe links)")
        }
        var s = EmailSettings(templatesDirectory: get("TEMPLATES") ?? FileManager.default.currentDirectoryPath + "/Templates", secret: secret)
        switch get("DELIVERY") ?? "result" {
        case "result": s.delivery = .result
        case "outbox": s.delivery = .outbox(get("OUTBOX") ?? FileManager.default.currentDirectoryPath + "/outbox")
        case "smtp":
            switch get("SMTP_STARTTLS") ?? "off" {
            case "off": break
            default: throw EmailError.configuration("FLEET_EMAIL_SMTP_STARTTLS: STARTTLS is not implemented yet; only 'off'")
            }
            var smtp = SMTPSettings(host: get("SMTP_HOST") ?? "127.0.0.1", port: try int("SMTP_PORT", 25))
            smtp.username = get("SMTP_USER")
            smtp.password = get("SMTP_PASSWORD")
            if let auth = get("SMTP_AUTH") {
                guard let a = SMTPSettings.Auth(rawValue: auth.uppercased()) else {
                    throw EmailError.configuration("FLEET_EMAIL_SMTP_AUTH must be PLAIN or LOGIN")
                }
                smtp.auth = a
            }
            smtp.poolSize = max(1, try int("SMTP_POOL", 4))
            s.delivery = .smtp(smtp)
        case let other: throw EmailError.configuration("FLEET_EMAIL_DELIVERY must be result, outbox or smtp, not '\(other)'")
        }
        if let base = get("BASE_URL") { s.baseURL = base }
        if let utm = get("UTM") {
            s.utm = utm == "off" ? [] : utm.split(separator: "&").compactMap { pair in
                let kv = pair.split(separator: "=", maxSplits: 1)
                return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
            }
        }
        s.pixelURL = get("PIXEL_URL")
        s.frequencyCap = try int("FREQUENCY_CAP", 0)
        switch get("CONSENT") ?? "opt-out" {
        case "opt-out": s.requireOptIn = false
        case "opt-in": s.requireOptIn = true
        default: throw EmailError.configuration("FLEET_EMAIL_CONSENT must be opt-out or opt-in")
        }
        return s
    }
}
