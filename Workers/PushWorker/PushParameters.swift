import FleetCore
import FleetMarketing
import FleetRuntime

/// The parameters of a `push` job (Docs/contract/push-job.schema.json), decoded before the handler runs:
/// `template` and `profile_id` (top level or `data`), `campaign` (as for email, see ``CampaignParameters``, plus the
/// push keys `quiet_hours`, `quiet_action`, `ttl_seconds`, `collapse_key`), and the optional device filters
/// `platform` (`ios` or `android`) and `app`.
///
/// A missing or wrong one makes the job `dead` with `invalid_parameters`, naming the field.
public struct PushParameters: JobParameters {
    public var templateName: String
    public var profileID: String
    public var campaign: CampaignParameters
    /// The job's `data`, for templates.
    public var data: JSONValue
    /// Only this platform's devices (`ios`, `android`), or all.
    public var platform: String?
    /// Only this app's devices, or all.
    public var app: String?
    /// `campaign.quiet_hours`: nil (the template's or the worker's apply), `.some(nil)` (`off`), or a window.
    public var quietHours: QuietHours??
    /// `campaign.quiet_action`: `defer` (the default: run at the window's end) or `drop` (`suppressed` / `quiet_hours`).
    public var dropInQuietHours: Bool
    public var ttlSeconds: Int?
    public var collapseKey: String?

    public init(job: JobEnvelope) throws(JobParameterError) {
        guard let template = try Self.string("template", of: job), !template.isEmpty else { throw .missing("template") }
        guard let profileID = try Self.string("profile_id", of: job), !profileID.isEmpty else { throw .missing("profile_id") }
        campaign = try CampaignParameters(job: job)
        platform = try Self.string("platform", of: job)
        if let p = platform, !["ios", "android"].contains(p) { throw JobParameterError(field: "platform", "must be \"ios\" or \"android\"") }
        app = try Self.string("app", of: job)
        let c = campaign.object
        switch c["quiet_hours"] {
        case nil, .null?: quietHours = nil
        case .string("off")?, .bool(false)?: quietHours = .some(nil)
        case .string(let text)?:
            guard let q = QuietHours(text) else { throw JobParameterError(field: "campaign.quiet_hours", "must be HH:MM-HH:MM (e.g. \"21:00-08:00\") or \"off\"") }
            quietHours = .some(q)
        case let other?: throw .wrongType("campaign.quiet_hours", expected: "a string HH:MM-HH:MM or \"off\"", got: other)
        }
        switch c["quiet_action"] {
        case nil, .null?, .string("defer")?: dropInQuietHours = false
        case .string("drop")?: dropInQuietHours = true
        default: throw JobParameterError(field: "campaign.quiet_action", "must be \"defer\" or \"drop\"")
        }
        switch c["ttl_seconds"] {
        case nil, .null?: ttlSeconds = nil
        case let v?:
            guard let n = v.intValue, (0...2_419_200).contains(n) else {
                throw JobParameterError(field: "campaign.ttl_seconds", "must be an integer from 0 to 2419200 (28 days)")
            }
            ttlSeconds = Int(n)
        }
        switch c["collapse_key"] {
        case nil, .null?: collapseKey = nil
        case .string(let key)?:
            guard !key.isEmpty, key.utf8.count <= 64 else { throw JobParameterError(field: "campaign.collapse_key", "must be 1 to 64 bytes") }
            collapseKey = key
        case let other?: throw .wrongType("campaign.collapse_key", expected: "a string", got: other)
        }
        templateName = template
        self.profileID = profileID
        data = job.data
    }
}
