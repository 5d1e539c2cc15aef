import FleetCore
import FleetRuntime
import Foundation

/// Settings from the optional config file (`--config FILE` or `FLEET_CONFIG`), a JSON object:
///
/// ```json
/// {"amqp_url": "amqp://fleet:secret@rabbit:5672/%2F", "store": "/var/lib/fleet/fleet.sqlite",
///  "prefix": "fleet", "log_level": "info", "concurrency": 64, "prefetch": 256, "metrics_port": 9464,
///  "grace_seconds": 30, "queue_type": "classic", "delivery_limit": 20, "templates": "Templates",
///  "retry": {"max_attempts": 5, "base_delay_ms": 1000, "max_delay_ms": 3600000},
///  "kinds": {"email": {"timeout_seconds": 60, "max_attempts": 8}}}
/// ```
/// Command-line flags win over the environment, which wins over the file.
struct FleetSettings {
    var values: JSONObject

    static func load(path: String?) throws -> FleetSettings {
        guard let path, !path.isEmpty else { return FleetSettings(values: JSONObject()) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError.usage("cannot read the config file \(path)")
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: Array(data))
        } catch {
            throw CLIError.usage("the config file \(path) is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else {
            throw CLIError.usage("the config file \(path) must hold a JSON object")
        }
        return FleetSettings(values: object)
    }

    func string(_ key: String) throws -> String? {
        guard let v = values[key], v != .null else { return nil }
        guard let s = v.stringValue else { throw CLIError.usage("config: '\(key)' must be a string") }
        return s
    }

    func int(_ key: String, in object: JSONObject? = nil) throws -> Int? {
        guard let v = (object ?? values)[key], v != .null else { return nil }
        guard let i = v.intValue else { throw CLIError.usage("config: '\(key)' must be an integer") }
        return Int(i)
    }

    /// Per-kind overrides: `kinds.<kind>.timeout_seconds` / `max_attempts`.
    func kindSettings(base: KindSettings) throws -> [String: KindSettings] {
        guard let kinds = values["kinds"]?.objectValue else { return [:] }
        var result: [String: KindSettings] = [:]
        for (kind, value) in kinds {
            guard let o = value.objectValue else { throw CLIError.usage("config: 'kinds.\(kind)' must be an object") }
            var settings = base
            if let t = try int("timeout_seconds", in: o) { settings.timeout = .seconds(t) }
            if let m = try int("max_attempts", in: o) { settings.retry.maxAttempts = max(1, m) }
            if let b = try int("base_delay_ms", in: o) { settings.retry.baseDelay = .milliseconds(b) }
            if let x = try int("max_delay_ms", in: o) { settings.retry.maxDelay = .milliseconds(x) }
            result[kind] = settings
        }
        return result
    }
}
