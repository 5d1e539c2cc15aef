import Foundation

/// The email worker's configuration, from the environment (`FLEET_EMAIL_*`):
///
/// | variable | meaning | default |
/// | --- | --- | --- |
/// | `FLEET_EMAIL_TEMPLATES` | the `Templates/` directory | `./Templates` |
/// | `FLEET_EMAIL_DELIVERY` | `result`, `outbox` or `smtp` | `result` |
/// | `FLEET_EMAIL_OUTBOX` | the directory of `.eml` files (delivery `outbox`) | `./outbox` |
/// | `FLEET_EMAIL_SMTP_HOST`, `_PORT` | the relay (delivery `smtp`) | `127.0.0.1`, `25` |
/// | `FLEET_EMAIL_SMTP_USER`, `_PASSWORD`, `_AUTH` | credentials; `_AUTH` forces PLAIN or LOGIN (unset: the one the relay's EHLO lists, PLAIN first) | none |
/// | `FLEET_EMAIL_SMTP_POOL` | sessions kept open | `4` |
/// | `FLEET_EMAIL_SMTP_STARTTLS` | `off`, `opportunistic` (when the relay's EHLO offers it) or `require` (no TLS: the delivery fails, retryable, before AUTH or MAIL) | `opportunistic` |
/// | `FLEET_EMAIL_SMTP_VERIFY` | `peer` (chain and name checked) or `none` (encrypted, the relay unauthenticated) | `peer` |
/// | `FLEET_EMAIL_SMTP_CA` | a PEM file of CA certificates trusted instead of the system store (not with `VERIFY=none`) | the system store |
/// | `FLEET_EMAIL_SMTP_TLS_NAME` | the DNS name the relay's certificate must carry, and the SNI name | `FLEET_EMAIL_SMTP_HOST` (an IP address: matched against the certificate's IP addresses) |
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
        case "smtp": s.delivery = .smtp(try smtp(get, int))
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

    /// The relay settings (`FLEET_EMAIL_SMTP_*`); the TLS settings are checked here, the CA file read, so that
    /// a mistake stops the worker at start rather than failing every delivery.
    private static func smtp(_ get: (String) -> String?, _ int: (String, Int) throws -> Int) throws -> SMTPSettings {
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
        func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ fallback: T) throws -> T where T.RawValue == String {
            guard let raw = get(key) else { return fallback }
            guard let value = T(rawValue: raw.lowercased()) else {
                throw EmailError.configuration(
                    "FLEET_EMAIL_\(key) must be \(T.allCases.map(\.rawValue).joined(separator: ", ")), not '\(raw)'")
            }
            return value
        }
        smtp.startTLS = try choice("SMTP_STARTTLS", SMTPSettings.StartTLS.opportunistic)
        smtp.verification = try choice("SMTP_VERIFY", SMTPSettings.Verification.peer)
        smtp.caFile = get("SMTP_CA")
        smtp.tlsName = get("SMTP_TLS_NAME")
        guard smtp.startTLS != .off else { return smtp }
        if smtp.caFile != nil && smtp.verification == .none {
            throw EmailError.configuration("FLEET_EMAIL_SMTP_CA has no use with FLEET_EMAIL_SMTP_VERIFY=none: drop one of them")
        }
        if let name = smtp.tlsName, SMTPSettings.isIPAddress(name) {
            throw EmailError.configuration(
                "FLEET_EMAIL_SMTP_TLS_NAME must be a DNS name (a relay reached by IP address is matched against its certificate's IP addresses)")
        }
        do throws(SMTPError) {
            _ = try SMTPTLS.makeContext(smtp)
        } catch {
            throw EmailError.configuration("\(smtp.caFile == nil ? "FLEET_EMAIL_SMTP_STARTTLS" : "FLEET_EMAIL_SMTP_CA"): \(error.message)")
        }
        return smtp
    }
}
