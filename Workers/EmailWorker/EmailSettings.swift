import FleetLinks
import FleetMarketing
import FleetRuntime
import Foundation

/// The email worker's configuration, from the environment (`FLEET_EMAIL_*`); ``settings`` declares each variable
/// with its default (Docs/settings.md is generated from it).
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
    /// The keys of the links (`FLEET_LINK_KEYS`, or `FLEET_EMAIL_SECRET` as key `k0`): shared with `fleet serve`.
    public var linkKeys: LinkKeys
    /// Where `fleet serve` answers the links (`FLEET_PUBLIC_URL`).
    public var publicURL: String
    public var utm: [(String, String)]
    /// An open pixel in each html part (`FLEET_EMAIL_TRACK_OPENS`).
    public var trackOpens: Bool
    /// Each http(s) link of the html through `fleet serve`'s `/c/` (`FLEET_EMAIL_TRACK_CLICKS`).
    public var trackClicks: Bool
    public var frequencyCap: Int
    /// `FLEET_FREQUENCY_CAP_ALL`: marketing messages of every channel per person and local day (0: none).
    public var frequencyCapAllChannels = 0
    public var requireOptIn: Bool

    /// The signer of the links.
    public var links: LinkSigner { LinkSigner(keys: linkKeys, publicURL: publicURL) }

    public init(templatesDirectory: String, delivery: Delivery = .result, linkKeys: LinkKeys,
                publicURL: String = "https://email.example.com", utm: [(String, String)] = [("utm_source", "email"), ("utm_medium", "email")],
                trackOpens: Bool = false, trackClicks: Bool = false, frequencyCap: Int = 0, requireOptIn: Bool = false) {
        self.templatesDirectory = templatesDirectory
        self.delivery = delivery
        self.linkKeys = linkKeys
        self.publicURL = publicURL
        self.utm = utm
        self.trackOpens = trackOpens
        self.trackClicks = trackClicks
        self.frequencyCap = frequencyCap
        self.requireOptIn = requireOptIn
    }

    /// Settings with one link key (id `k0`) of `secret`, which must not be empty.
    public init(templatesDirectory: String, delivery: Delivery = .result, secret: String) {
        // An empty secret is refused by fromEnvironment before it gets here; a caller passing one gets a key of "-".
        let keys = (try? LinkKeys(secret: secret)) ?? (try? LinkKeys(secret: "-"))
        self.init(templatesDirectory: templatesDirectory, delivery: delivery, linkKeys: keys!)
    }

    /// Every variable ``fromEnvironment(_:templatesFallback:)`` reads.
    public static let settings: [Setting] = {
        func env(_ name: String, _ fallback: String, _ summary: String, required: Bool = false, secret: Bool = false) -> Setting {
            Setting(environment: name, defaultValue: fallback, requirement: required ? .forKinds(["email"]) : .optional,
                    scope: "kind email", summary: summary, isSecret: secret)
        }
        return [
            env("FLEET_EMAIL_SECRET", "none", "The HMAC-SHA256 secret of the mails' links (unsubscribe, preferences, open pixel, tracked clicks) when `FLEET_LINK_KEYS` is not set: the one key, of id `k0`. A worker with kind `email` (and `fleet serve`) refuses to start without one of the two.", required: true, secret: true),
            env("FLEET_EMAIL_TEMPLATES", "the templates directory (`FLEET_TEMPLATES`, config `templates`), else `./Templates`", "The directory holding `email/<name>/`, `layouts/`, `partials/`."),
            env("FLEET_EMAIL_DELIVERY", "`result`", "`result` (the MIME text in `output.mime`), `outbox` (`.eml` files) or `smtp` (a relay)."),
            env("FLEET_EMAIL_OUTBOX", "`./outbox`", "Delivery `outbox`: the directory of `<job id>.eml` files."),
            env("FLEET_EMAIL_SMTP_HOST", "`127.0.0.1`", "Delivery `smtp`: the relay's host."),
            env("FLEET_EMAIL_SMTP_PORT", "`25`", "Delivery `smtp`: the relay's port."),
            env("FLEET_EMAIL_SMTP_USER", "none (no AUTH)", "Delivery `smtp`: the AUTH user name."),
            env("FLEET_EMAIL_SMTP_PASSWORD", "none", "Delivery `smtp`: the AUTH password.", secret: true),
            env("FLEET_EMAIL_SMTP_AUTH", "the mechanism the relay's EHLO lists, PLAIN first", "`PLAIN` or `LOGIN` to force one."),
            env("FLEET_EMAIL_SMTP_POOL", "`64`", "Delivery `smtp`: the most SMTP sessions open at once per worker process (the default is the worker's default concurrency: no message waits for a session). Sessions are opened as messages wait and reused; the pool follows the work up to this number. A relay sees up to N × this with N worker processes."),
            env("FLEET_EMAIL_SMTP_IDLE", "`30`", "Delivery `smtp`: seconds a session may stay idle before it is closed (QUIT)."),
            env("FLEET_EMAIL_SMTP_MAX_MESSAGES", "`100`", "Delivery `smtp`: messages per session; then the session is closed and a fresh one opened as needed (`0`: no cap)."),
            env("FLEET_EMAIL_SMTP_BACKOFF", "`30`", "Delivery `smtp`: seconds the pool stays at half the sessions open (at least one) after the relay answered 421 or refused a connection, before growing back by one session a second (`0`: never shrinks)."),
            env("FLEET_EMAIL_SMTP_PIPELINING", "`on`", "Delivery `smtp`: `on` (PIPELINING, RFC 2920, when the relay's EHLO offers it) or `off`."),
            env("FLEET_EMAIL_SMTP_CHUNKING", "`on`", "Delivery `smtp`: `on` (CHUNKING/BDAT, RFC 3030, when the relay's EHLO offers it) or `off`."),
            env("FLEET_EMAIL_SMTP_RATE", "none (no limit)", "Delivery `smtp`: the most messages per worker process handed to the relay, `N/s`, `N/m` or `N/h` (e.g. `50/s`). Jobs over it are deferred (`deferred`, reason `smtp_rate`) to their slot; divide a relay's quota by the number of worker processes."),
            env("FLEET_EMAIL_SMTP_STARTTLS", "`opportunistic`", "`off`, `opportunistic` (when the relay's EHLO offers it) or `require` (no TLS: the delivery fails, retryable, before AUTH or MAIL)."),
            env("FLEET_EMAIL_SMTP_VERIFY", "`peer`", "`peer` (the relay's certificate chain and name are checked) or `none` (encrypted, the relay unauthenticated)."),
            env("FLEET_EMAIL_SMTP_CA", "the system trust store", "A PEM file of CA certificates trusted instead of the system store (not with `VERIFY=none`)."),
            env("FLEET_EMAIL_SMTP_TLS_NAME", "`FLEET_EMAIL_SMTP_HOST`", "The DNS name the relay's certificate must carry, also sent as SNI."),

            env("FLEET_EMAIL_UTM", "`utm_source=email&utm_medium=email`", "Query parameters added to html links (`off`: none); `utm_campaign` is the campaign id."),
            env("FLEET_EMAIL_TRACK_OPENS", "`off`", "`on`: each html part carries a 1x1 pixel `FLEET_PUBLIC_URL/o/<token>.gif` (`fleet serve` records `email_opened`)."),
            env("FLEET_EMAIL_TRACK_CLICKS", "`off`", "`on`: each http(s) link of the html (not the unsubscribe and preference links) goes through `FLEET_PUBLIC_URL/c/<token>` (`fleet serve` records `email_clicked` and redirects to the signed target)."),
            env("FLEET_EMAIL_FREQUENCY_CAP", "`0` (no cap)", "Marketing mails per person per local day; a campaign's `frequency_cap` wins."),
            env("FLEET_EMAIL_CONSENT", "`opt-out`", "`opt-out` (no consent record: may send) or `opt-in` (marketing needs an opt-in). `fleet serve` reads it too: its preference centre shows a group without a record as ticked under `opt-out`."),
        ]
    }()

    /// The settings of `environment`. Throws ``EmailError`` `email_configuration` naming the variable.
    ///
    /// - Parameter templatesFallback: the templates directory when `FLEET_EMAIL_TEMPLATES` is not set (the CLI passes
    ///   its own: `FLEET_TEMPLATES` or the config file's `templates`); nil: `./Templates`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       templatesFallback: String? = nil) throws -> EmailSettings {
        func get(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        func int(_ name: String, _ fallback: Int) throws -> Int {
            guard let raw = get(name) else { return fallback }
            guard let v = Int(raw), v >= 0 else { throw EmailError.configuration("\(name) must be a non-negative integer") }
            return v
        }
        let keys: LinkKeys
        let publicURL: String
        do {
            keys = try LinkSettings.keys(environment)
            publicURL = try LinkSettings.publicURL(environment)
        } catch {
            throw EmailError.configuration(error.message)
        }
        let cwd = FileManager.default.currentDirectoryPath
        var s = EmailSettings(templatesDirectory: get("FLEET_EMAIL_TEMPLATES") ?? templatesFallback ?? cwd + "/Templates", linkKeys: keys,
                              publicURL: publicURL)
        switch get("FLEET_EMAIL_DELIVERY") ?? "result" {
        case "result": s.delivery = .result
        case "outbox": s.delivery = .outbox(get("FLEET_EMAIL_OUTBOX") ?? cwd + "/outbox")
        case "smtp": s.delivery = .smtp(try smtp(get, int))
        case let other: throw EmailError.configuration("FLEET_EMAIL_DELIVERY must be result, outbox or smtp, not '\(other)'")
        }
        if let utm = get("FLEET_EMAIL_UTM") {
            s.utm = utm == "off" ? [] : utm.split(separator: "&").compactMap { pair in
                let kv = pair.split(separator: "=", maxSplits: 1)
                return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
            }
        }
        s.trackOpens = try onOff(get, "FLEET_EMAIL_TRACK_OPENS", default: false)
        s.trackClicks = try onOff(get, "FLEET_EMAIL_TRACK_CLICKS", default: false)
        s.frequencyCap = try int("FLEET_EMAIL_FREQUENCY_CAP", 0)
        guard let all = FrequencyCap.allChannelsLimit(environment) else {
            throw EmailError.configuration("FLEET_FREQUENCY_CAP_ALL must be a non-negative integer")
        }
        s.frequencyCapAllChannels = all
        switch get("FLEET_EMAIL_CONSENT") ?? "opt-out" {
        case "opt-out": s.requireOptIn = false
        case "opt-in": s.requireOptIn = true
        default: throw EmailError.configuration("FLEET_EMAIL_CONSENT must be opt-out or opt-in")
        }
        return s
    }

    /// The relay settings (`FLEET_EMAIL_SMTP_*`); the TLS settings are checked here, the CA file read, so that
    /// a mistake stops the worker at start rather than failing every delivery.
    /// An `on`/`off` variable (any case), `fallback` when unset.
    private static func onOff(_ get: (String) -> String?, _ name: String, default fallback: Bool) throws -> Bool {
        switch get(name)?.lowercased() {
        case nil: return fallback
        case "on": return true
        case "off": return false
        case let other?: throw EmailError.configuration("\(name) must be on or off, not '\(other)'")
        }
    }

    private static func smtp(_ get: (String) -> String?, _ int: (String, Int) throws -> Int) throws -> SMTPSettings {
        var smtp = SMTPSettings(host: get("FLEET_EMAIL_SMTP_HOST") ?? "127.0.0.1", port: try int("FLEET_EMAIL_SMTP_PORT", 25))
        smtp.username = get("FLEET_EMAIL_SMTP_USER")
        smtp.password = get("FLEET_EMAIL_SMTP_PASSWORD")
        if let auth = get("FLEET_EMAIL_SMTP_AUTH") {
            guard let a = SMTPSettings.Auth(rawValue: auth.uppercased()) else {
                throw EmailError.configuration("FLEET_EMAIL_SMTP_AUTH must be PLAIN or LOGIN")
            }
            smtp.auth = a
        }
        smtp.poolSize = max(1, try int("FLEET_EMAIL_SMTP_POOL", 64))
        smtp.idleTimeoutSeconds = Int64(max(1, try int("FLEET_EMAIL_SMTP_IDLE", 30)))
        smtp.maxMessagesPerSession = try int("FLEET_EMAIL_SMTP_MAX_MESSAGES", 100)
        smtp.backoffSeconds = Int64(try int("FLEET_EMAIL_SMTP_BACKOFF", 30))
        smtp.pipelining = try onOff(get, "FLEET_EMAIL_SMTP_PIPELINING", default: true)
        smtp.chunking = try onOff(get, "FLEET_EMAIL_SMTP_CHUNKING", default: true)
        if let raw = get("FLEET_EMAIL_SMTP_RATE") {
            guard let rate = RateLimit(parsing: raw) else {
                throw EmailError.configuration("FLEET_EMAIL_SMTP_RATE must be N/s, N/m or N/h with N a positive integer (e.g. 50/s), not '\(raw)'")
            }
            smtp.rate = rate
        }
        func choice<T: RawRepresentable & CaseIterable>(_ name: String, _ fallback: T) throws -> T where T.RawValue == String {
            guard let raw = get(name) else { return fallback }
            guard let value = T(rawValue: raw.lowercased()) else {
                throw EmailError.configuration(
                    "\(name) must be \(T.allCases.map(\.rawValue).joined(separator: ", ")), not '\(raw)'")
            }
            return value
        }
        smtp.startTLS = try choice("FLEET_EMAIL_SMTP_STARTTLS", SMTPSettings.StartTLS.opportunistic)
        smtp.verification = try choice("FLEET_EMAIL_SMTP_VERIFY", SMTPSettings.Verification.peer)
        smtp.caFile = get("FLEET_EMAIL_SMTP_CA")
        smtp.tlsName = get("FLEET_EMAIL_SMTP_TLS_NAME")
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
