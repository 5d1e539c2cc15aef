import FleetCampaign
import FleetLinks
import Foundation

/// `fleet serve`'s configuration (Docs/settings.md lists each variable): where it listens, the store, the link keys
/// it verifies with, how it tells machine opens, its POST rate limit, who may read campaign reports, and what counts
/// as a conversion.
public struct ServeSettings: Sendable {
    public var host: String
    public var port: Int
    /// The profile store (and ledger) file.
    public var storePath: String
    /// The templates directory: the subscription groups the preference centre lists are those of its email templates.
    public var templatesDirectory: String
    public var links: LinkSigner
    /// Opens from these networks within ``machineOpenSeconds`` of the send are machine opens (a privacy proxy
    /// fetching every pixel, as Apple Mail Privacy Protection does).
    public var machineRanges: [AddressRange]
    /// `0`: any time after the send.
    public var machineOpenSeconds: Int
    /// POSTs per client address per minute (unsubscribe and preference centre).
    public var postsPerMinute: Int
    /// The clock of the POST limit (not a setting: tests freeze it, so that a slow machine cannot refill a bucket).
    public var limitClock: @Sendable () -> ContinuousClock.Instant = { .now }
    /// Take the client address from the last `X-Forwarded-For` hop (behind a reverse proxy).
    public var trustForwardedFor: Bool
    /// The HTTP Basic password of `/campaigns/` (user `admin`); nil: only loopback clients may read reports.
    public var adminPassword: String?
    /// Marketing groups without a consent record count as subscribed (`FLEET_EMAIL_CONSENT=opt-out`).
    public var optOutConsent: Bool
    public var report: CampaignReport.Options

    /// The largest request body accepted (forms).
    public static let maxBodyBytes = 16 * 1024

    public init(host: String = "127.0.0.1", port: Int = 8080, storePath: String, templatesDirectory: String, links: LinkSigner,
                machineRanges: [AddressRange] = ServeSettings.defaultMachineRanges, machineOpenSeconds: Int = 60,
                postsPerMinute: Int = 30, trustForwardedFor: Bool = false, adminPassword: String? = nil,
                optOutConsent: Bool = true, report: CampaignReport.Options = CampaignReport.Options()) {
        self.host = host
        self.port = port
        self.storePath = storePath
        self.templatesDirectory = templatesDirectory
        self.links = links
        self.machineRanges = machineRanges
        self.machineOpenSeconds = machineOpenSeconds
        self.postsPerMinute = postsPerMinute
        self.trustForwardedFor = trustForwardedFor
        self.adminPassword = adminPassword
        self.optOutConsent = optOutConsent
        self.report = report
    }

    /// Apple's network (17.0.0.0/8), from which Apple Mail Privacy Protection's proxies fetch images.
    public static let defaultMachineRanges = [AddressRange("17.0.0.0/8")!]

    /// Reads the environment. `listen` (`--listen`) wins over `FLEET_SERVE_LISTEN`. Throws ``ServeError`` naming the
    /// variable.
    public static func fromEnvironment(_ env: [String: String], storePath: String, templatesDirectory: String,
                                       listen: String? = nil) throws -> ServeSettings {
        func get(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        func int(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let raw = get(name) else { return fallback }
            guard let v = Int(raw), range.contains(v) else { throw ServeError("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)") }
            return v
        }
        let (host, port) = try parseListen(listen ?? get("FLEET_SERVE_LISTEN") ?? "127.0.0.1:8080")
        let links: LinkSigner
        do {
            links = LinkSigner(keys: try LinkSettings.keys(env), publicURL: try LinkSettings.publicURL(env), maxAge: try LinkSettings.maxAge(env))
        } catch {
            throw ServeError(error.message)
        }
        var s = ServeSettings(host: host, port: port, storePath: storePath, templatesDirectory: templatesDirectory, links: links)
        if let raw = get("FLEET_SERVE_MACHINE_OPEN_RANGES") {
            s.machineRanges = try raw == "none" ? [] : raw.split(separator: ",").map { part in
                let text = part.trimmingCharacters(in: .whitespaces)
                guard let range = AddressRange(text) else { throw ServeError("FLEET_SERVE_MACHINE_OPEN_RANGES: '\(text)' is not an address/prefix") }
                return range
            }
        }
        s.machineOpenSeconds = try int("FLEET_SERVE_MACHINE_OPEN_SECONDS", 60, 0...86_400 * 365)
        s.postsPerMinute = try int("FLEET_SERVE_POST_RATE", 30, 1...1_000_000)
        switch get("FLEET_SERVE_TRUST_FORWARDED")?.lowercased() ?? "off" {
        case "on": s.trustForwardedFor = true
        case "off": s.trustForwardedFor = false
        default: throw ServeError("FLEET_SERVE_TRUST_FORWARDED must be on or off")
        }
        s.adminPassword = get("FLEET_SERVE_ADMIN_PASSWORD")
        switch get("FLEET_EMAIL_CONSENT") ?? "opt-out" {
        case "opt-out": s.optOutConsent = true
        case "opt-in": s.optOutConsent = false
        default: throw ServeError("FLEET_EMAIL_CONSENT must be opt-out or opt-in")
        }
        s.report = try reportOptions(env)
        return s
    }

    /// `FLEET_CONVERSION_EVENTS` and `FLEET_CONVERSION_WINDOW_HOURS` (also read by `fleet campaign report`).
    public static func reportOptions(_ env: [String: String]) throws -> CampaignReport.Options {
        var o = CampaignReport.Options()
        if let raw = env["FLEET_CONVERSION_EVENTS"], !raw.isEmpty {
            o.conversionEvents = Set(raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        if let raw = env["FLEET_CONVERSION_WINDOW_HOURS"], !raw.isEmpty {
            guard let h = Int64(raw), h >= 1, h <= 24 * 366 else { throw ServeError("FLEET_CONVERSION_WINDOW_HOURS must be a whole number from 1 to 8784") }
            o.windowSeconds = h * 3600
        }
        return o
    }

    /// `host:port` (`[v6]:port` for IPv6).
    public static func parseListen(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ServeError("the listen address must be host:port, like 127.0.0.1:8080, not '\(text)'")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ServeError("the listen address must name a host, like 127.0.0.1:8080") }
        return (host, port)
    }
}
