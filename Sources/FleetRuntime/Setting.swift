/// One setting an operator can give the fleet: its environment variable, command-line flag and config-file key
/// (any of them may be absent), its default, and whether it is required. Every setting the code reads is
/// declared as one of these (the runtime's, the CLI's and each kind's), and `fleet settings` prints them all as
/// the table of Docs/settings.md (a test keeps the two equal).
public struct Setting: Sendable, Hashable {
    /// When a setting must be given.
    public enum Requirement: Sendable, Hashable {
        /// Never: the default applies.
        case optional
        /// By a worker running one of these kinds (it refuses to start without it).
        case forKinds([String])
    }

    /// The environment variable (`FLEET_...`), if there is one.
    public var environment: String?
    /// The command-line flag (`--amqp-url`), if there is one, and the commands that take it.
    public var flag: String?
    /// The key in the JSON config file (`amqp_url`, `retry.max_attempts`), if there is one.
    public var configKey: String?
    /// The default, as people write it (`64`, `./fleet.sqlite`, `none`).
    public var defaultValue: String
    public var requirement: Requirement
    /// Who reads it: `all commands`, `fleet worker`, `kind email`, ...
    public var scope: String
    /// What it means, in one or two sentences (Markdown).
    public var summary: String
    /// A secret (password, key): `fleet settings` never prints its value.
    public var isSecret: Bool

    public init(environment: String? = nil, flag: String? = nil, configKey: String? = nil, defaultValue: String,
                requirement: Requirement = .optional, scope: String, summary: String, isSecret: Bool = false) {
        self.environment = environment
        self.flag = flag
        self.configKey = configKey
        self.defaultValue = defaultValue
        self.requirement = requirement
        self.scope = scope
        self.summary = summary
        self.isSecret = isSecret
    }

    /// The name to show: the environment variable, else the flag, else the config key.
    public var name: String { environment ?? flag ?? configKey ?? "?" }

    /// `yes (kind email)` or `no`.
    public var requiredText: String {
        switch requirement {
        case .optional: "no"
        case .forKinds(let kinds): "yes (kind \(kinds.joined(separator: ", ")))"
        }
    }
}
