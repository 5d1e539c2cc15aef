/// The link settings shared by the email worker (which signs) and `fleet serve` (which verifies), read from the
/// environment: `FLEET_LINK_KEYS` (else `FLEET_EMAIL_SECRET` as key `k0`), `FLEET_PUBLIC_URL`,
/// `FLEET_LINK_MAX_AGE_DAYS`. Docs/settings.md lists them.
public enum LinkSettings {
    /// The default of `FLEET_PUBLIC_URL`.
    public static let defaultPublicURL = "https://email.example.com"
    /// The default of `FLEET_LINK_MAX_AGE_DAYS`.
    public static let defaultMaxAgeDays = 365

    static func get(_ environment: [String: String], _ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The keys; throws ``LinkError`` `invalid_keys` when neither variable is set or the list is malformed.
    public static func keys(_ environment: [String: String]) throws(LinkError) -> LinkKeys {
        if let list = get(environment, "FLEET_LINK_KEYS") { return try LinkKeys(parsing: list) }
        guard let secret = get(environment, "FLEET_EMAIL_SECRET") else {
            throw LinkError(code: "invalid_keys", message: "neither FLEET_LINK_KEYS nor FLEET_EMAIL_SECRET is set (the HMAC keys of the mails' links)")
        }
        return try LinkKeys(secret: secret)
    }

    /// `FLEET_PUBLIC_URL` without a trailing `/`; throws ``LinkError`` `invalid_url` unless it is http(s) with a host.
    public static func publicURL(_ environment: [String: String]) throws(LinkError) -> String {
        var url = get(environment, "FLEET_PUBLIC_URL") ?? defaultPublicURL
        while url.hasSuffix("/") { url.removeLast() }
        let lower = url.lowercased()
        let rest = lower.hasPrefix("https://") ? lower.dropFirst(8) : lower.hasPrefix("http://") ? lower.dropFirst(7) : nil
        guard let rest, !rest.isEmpty, !rest.hasPrefix("/"), !url.contains("?"), !url.contains("#"), !url.contains(" ") else {
            throw LinkError(code: "invalid_url", message: "FLEET_PUBLIC_URL must be an http(s) URL with a host and no query, like https://mail.example.com")
        }
        return url
    }

    /// `FLEET_LINK_MAX_AGE_DAYS` (at least 1).
    public static func maxAge(_ environment: [String: String]) throws(LinkError) -> Duration {
        guard let raw = get(environment, "FLEET_LINK_MAX_AGE_DAYS") else { return .seconds(defaultMaxAgeDays * 86_400) }
        guard let days = Int(raw), days >= 1, days <= 36_500 else {
            throw LinkError(code: "invalid_settings", message: "FLEET_LINK_MAX_AGE_DAYS must be a whole number of days from 1 to 36500")
        }
        return .seconds(days * 86_400)
    }
}
