import ContentWorker
import EmailWorker
import FleetMarketing
import PushWorker
import FleetRuntime

/// Every setting the `fleet` program reads: the CLI's own, the worker runtime's, and each kind's. `fleet settings`
/// prints it; Docs/settings.md holds the same table (a test compares them, and checks that every `FLEET_*`
/// variable named in the sources is here).
enum SettingsCatalog {
    static let all: [Setting] = global + worker + EmailSettings.settings + PushSettings.settings + [FrequencyCap.allChannelsSetting] + ContentSettings.settings + links + serve + bench

    static let global: [Setting] = [
        Setting(environment: "FLEET_AMQP_URL", flag: "--amqp-url (repeatable)", configKey: "amqp_url",
                defaultValue: "`amqp://guest:guest@127.0.0.1:5672/%2F`", scope: "every command that reaches the broker",
                summary: "The broker URL (`amqp://` or `amqps://`, user and password in it, the vhost URL-encoded). A cluster: the nodes comma-separated (`amqp://u:p@n1:5672,n2:5672,n3:5672/%2F`, or whole URLs separated by commas); connections try them in a shuffled order and reconnect to any live one.", isSecret: true),
        Setting(environment: "FLEET_STORE", flag: "--store", configKey: "store", defaultValue: "`./fleet.sqlite`",
                scope: "fleet worker, profiles, catalog, segment, email preview",
                summary: "The SQLite file of the job ledger and the profile store, shared by the workers of one host; or `postgres://user[:password]@host[:port]/database[?sslmode=...]`: the job ledger, the effects journal and the CRM side of the profile store on PostgreSQL, shared by workers on many hosts (so far `fleet worker` of kinds crm, email and noop, `fleet profiles`, `fleet segment` and `fleet catalog`: the other kinds and the other commands need a file, and say so). `sslmode` as libpq's: `prefer` (default: TLS if offered, certificate not checked), `disable`, `require` (TLS, not checked), `verify-full` (TLS, certificate and host checked against the system's CAs or the PEM file `sslrootcert=`). `pool_size=` (default 20): the most connections each process opens, so a fleet needs replicas x pool_size of the server's `max_connections`. A server that does not answer within 10 s: one line, exit 69.", isSecret: true),
        Setting(environment: "FLEET_PREFIX", flag: "--prefix", configKey: "prefix", defaultValue: "`fleet`",
                scope: "every command that reaches the broker",
                summary: "The name prefix of the exchanges and queues (letters, digits, `-`, `_`, `.`)."),
        Setting(environment: "FLEET_CONFIG", flag: "--config", defaultValue: "none", scope: "every command",
                summary: "A JSON config file holding the config keys of this table. Flags win over the environment, which wins over the file."),
        Setting(environment: "FLEET_LOG_LEVEL", flag: "--log-level", configKey: "log_level",
                defaultValue: "`info` for `fleet worker`, `warning` for the other commands", scope: "every command",
                summary: "`trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical`; logs go to stderr."),
        Setting(environment: "FLEET_QUEUE_TYPE", flag: "--queue-type (topology apply)", configKey: "queue_type",
                defaultValue: "`classic`", scope: "fleet worker, topology apply",
                summary: "`classic` or `quorum`: the type of every queue of the fleet (job, delay, dead-letter and default results queues; quorum: replicated on a cluster). Workers declare the topology too: they and `topology apply` must agree."),
        Setting(environment: "FLEET_DELIVERY_LIMIT", flag: "--delivery-limit (topology apply)", configKey: "delivery_limit",
                defaultValue: "`20`", scope: "fleet worker, topology apply",
                summary: "Quorum queues: deliveries of a job before the broker dead-letters it (`delivery_limit`)."),
        Setting(environment: "FLEET_TEMPLATES", flag: "--templates (template render, template check)", configKey: "templates",
                defaultValue: "`./Templates`", scope: "template render, template check, fleet worker",
                summary: "The templates directory (the email worker's unless `FLEET_EMAIL_TEMPLATES` is set)."),
        Setting(environment: "FLEET_MANAGEMENT_URL", flag: "--management-url (status)", configKey: "management_url",
                defaultValue: "none", scope: "fleet status",
                summary: "RabbitMQ's management API (`http://user:password@host:15672`): `fleet status` then shows each queue's type, leader (quorum) or node (classic), and members, those down marked.", isSecret: true),
        Setting(environment: "FLEET_METRICS_PORT", flag: "--metrics-port (worker)", configKey: "metrics_port",
                defaultValue: "none (no endpoint)", scope: "fleet worker",
                summary: "Serve Prometheus metrics at `/metrics`, and `/healthz`, `/readyz`, on this port (all interfaces)."),
    ]

    static let worker: [Setting] = [
        Setting(flag: "--kinds", defaultValue: "`noop`", scope: "fleet worker",
                summary: "Comma-separated kinds to run: \(WorkerCommand.kindNames.map { "`\($0)`" }.joined(separator: ", "))."),
        Setting(flag: "--concurrency", configKey: "concurrency", defaultValue: "`64`", scope: "fleet worker",
                summary: "Jobs run at once in the process (1 to 10000)."),
        Setting(flag: "--prefetch", configKey: "prefetch", defaultValue: "`256`", scope: "fleet worker",
                summary: "Deliveries the broker sends ahead, per queue (1 to 65535)."),
        Setting(flag: "--timeout", configKey: "timeout_seconds", defaultValue: "`60`", scope: "fleet worker",
                summary: "Seconds a job may run; then it is cancelled and retried as `timeout`. Per kind: `kinds.<kind>.timeout_seconds`."),
        Setting(flag: "--max-attempts", configKey: "retry.max_attempts", defaultValue: "`5`", scope: "fleet worker",
                summary: "Attempts before a retryable failure is dead-lettered (`retries_exhausted`). Per kind: `kinds.<kind>.max_attempts`."),
        Setting(configKey: "retry.base_delay_ms", defaultValue: "`1000`", scope: "fleet worker",
                summary: "The backoff's first delay in ms. Per kind: `kinds.<kind>.base_delay_ms`."),
        Setting(configKey: "retry.max_delay_ms", defaultValue: "`3600000`", scope: "fleet worker",
                summary: "The backoff's cap in ms. Per kind: `kinds.<kind>.max_delay_ms`."),
        Setting(flag: "--grace", configKey: "grace_seconds", defaultValue: "`30`", scope: "fleet worker",
                summary: "Seconds the jobs in flight get to finish after SIGTERM/SIGINT; then they are cancelled (the broker redelivers them)."),
        Setting(environment: "FLEET_LEDGER_RETENTION", flag: "--ledger-retention", configKey: "ledger_retention",
                defaultValue: "`7d`", scope: "fleet worker",
                summary: "How long finished jobs (their results, answered to redeliveries) and effect records stay in the ledger: `7d`, `36h`, `90m`, or `0` for ever. Pruned at start and hourly; frequency-cap rows go after two days whatever this says."),
        Setting(flag: "--driver", defaultValue: "`amqp`", scope: "fleet worker",
                summary: "The queue: `amqp` (RabbitMQ) or `memory` (in process, no broker: runs the jobs of `--jobs FILE`, prints each result as a JSON line, ends when every job has a final result)."),
    ]

    /// The mails' links: signed by the email worker, answered by `fleet serve`; both must have the same values.
    static let links: [Setting] = [
        Setting(environment: "FLEET_LINK_KEYS", defaultValue: "none (`FLEET_EMAIL_SECRET` as the one key `k0`)", scope: "kind email, fleet serve",
                summary: "The HMAC-SHA256 keys of the links, `id:secret[,id:secret...]` (ids: letters, digits, `-`, `_`); the first signs, every one listed verifies. Rotate by putting a new key first and dropping the old one after `FLEET_LINK_MAX_AGE_DAYS`.", isSecret: true),
        Setting(environment: "FLEET_PUBLIC_URL", defaultValue: "`https://email.example.com`", scope: "kind email, fleet serve",
                summary: "Where `fleet serve` is reached from the internet (http(s), no query): links are `<url>/u/…`, `/p/…`, `/o/….gif`, `/c/…`."),
        Setting(environment: "FLEET_LINK_MAX_AGE_DAYS", defaultValue: "`365`", scope: "fleet serve",
                summary: "Days (1 to 36500) a link is honoured after its mail was rendered; older links get the same 404 as forged ones."),
    ]

    /// `fleet serve`'s own settings, and the campaign report's.
    static let serve: [Setting] = [
        Setting(environment: "FLEET_SERVE_LISTEN", flag: "--listen (serve)", defaultValue: "`127.0.0.1:8080`", scope: "fleet serve",
                summary: "The `host:port` to listen on (`[::1]:8080` for IPv6; port `0` picks a free one)."),
        Setting(environment: "FLEET_SERVE_MACHINE_OPEN_RANGES", defaultValue: "`17.0.0.0/8`", scope: "fleet serve",
                summary: "Comma-separated networks (CIDR, IPv4 or IPv6) of mail privacy proxies (Apple Mail Privacy Protection fetches from Apple's 17.0.0.0/8): opens from them are machine opens, counted apart (`none`: no range)."),
        Setting(environment: "FLEET_SERVE_MACHINE_OPEN_SECONDS", defaultValue: "`60`", scope: "fleet serve",
                summary: "An open from those ranges is a machine open when it comes within this many seconds (0 to 31536000) of the send (`0`: at any time)."),
        Setting(environment: "FLEET_SERVE_POST_RATE", defaultValue: "`30`", scope: "fleet serve",
                summary: "POSTs (unsubscribe, preference centre; 1 to 1000000) a minute per link token (per client address, IPv6 per /64, for tokens that do not verify); more get 429 with `Retry-After`."),
        Setting(environment: "FLEET_SERVE_TRUST_FORWARDED", defaultValue: "`off`", scope: "fleet serve",
                summary: "`on`: the client address is the last hop of `X-Forwarded-For` (behind a reverse proxy that sets it); `off`: the socket's peer."),
        Setting(environment: "FLEET_SERVE_ADMIN_PASSWORD", defaultValue: "none (reports for loopback clients only)", scope: "fleet serve",
                summary: "The HTTP Basic password (user `admin`) of `/campaigns/<id>`. Set it when a reverse proxy on the same host forwards to `fleet serve` (its requests come from loopback).", isSecret: true),
        Setting(environment: "FLEET_CONVERSION_EVENTS", defaultValue: "none (events with an amount only)", scope: "fleet serve, campaign report",
                summary: "Comma-separated event names that count as conversions besides events with an amount (purchases)."),
        Setting(environment: "FLEET_CONVERSION_WINDOW_HOURS", defaultValue: "`168`", scope: "fleet serve, campaign report",
                summary: "Hours (1 to 8784) after a send (for `converted`) or a click (last-click attribution) within which a conversion counts."),
    ]

    static let bench: [Setting] = [
        Setting(environment: "FLEET_SHARED", flag: "--shared (bench email, bench liquid)", defaultValue: "`<repo>/../shared`",
                scope: "fleet bench", summary: "The shared directory with the peer benchmarks and the workload generator."),
    ]

    /// The table of Docs/settings.md.
    static var markdown: String {
        var lines = [
            "| environment | flag | config key | default | required | read by | meaning |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        /// `--flag (commands)` as code, then the commands in plain text; `—` when absent.
        func cell(_ s: String?) -> String {
            guard let s else { return "—" }
            guard let open = s.range(of: " (") else { return "`\(s)`" }
            return "`\(s[..<open.lowerBound])`\(s[open.lowerBound...])"
        }
        for s in all {
            lines.append("| \(cell(s.environment)) | \(cell(s.flag)) | \(cell(s.configKey)) | \(s.defaultValue) | \(s.requiredText) | \(s.scope) | \(s.summary) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
