import FleetCore
import FleetRuntime

/// The parameters of an `email` job (Docs/contract/email-job.schema.json), decoded before the handler runs:
/// `template` and `profile_id` (at the top level, or in `data`), `campaign` (a string id, or an object with at
/// least `id`; `data.campaign` is merged into it), `data.variant` (forces a variant: tests, previews).
///
/// A missing or wrong one makes the job `dead` with `invalid_parameters`, naming the field: a campaign's
/// `variants`, `holdout`, `frequency_cap` and `cap_action` are checked here too.
public struct EmailParameters: JobParameters {
    public var templateName: String
    public var profileID: String
    /// The campaign object (`id` always set: `none` without a campaign).
    public var campaign: JSONObject
    public var campaignID: String
    /// The job's `data`, for templates.
    public var data: JSONValue
    /// `data.variant`.
    public var forcedVariant: String?
    /// The campaign's variants and holdout.
    public var assigner: VariantAssigner
    /// `campaign.frequency_cap`, when the campaign sets one.
    public var frequencyCap: Int?
    /// `campaign.cap_action`: `defer` (run again on the person's next local day) or `suppress` (the default).
    public var deferWhenCapped: Bool

    public init(job: JobEnvelope) throws(JobParameterError) {
        guard let template = try Self.string("template", of: job), !template.isEmpty else { throw .missing("template") }
        guard let profileID = try Self.string("profile_id", of: job), !profileID.isEmpty else { throw .missing("profile_id") }
        var campaign = JSONObject()
        switch job.fields["campaign"] {
        case .string(let id)?: campaign["id"] = .string(id)
        case .object(let o)?:
            guard case .string? = o["id"] else {
                throw JobParameterError(field: "campaign.id", "is required when 'campaign' is an object (a string)")
            }
            campaign = o
        case nil, .null?: break
        case let other?: throw .wrongType("campaign", expected: "a string or an object with a string 'id'", got: other)
        }
        switch job.data["campaign"] {
        case .object(let extra)?: for (k, v) in extra where campaign[k] == nil { campaign[k] = v }
        case nil, .null?: break
        case let other?: throw .wrongType("data.campaign", expected: "an object", got: other)
        }
        let campaignID = campaign["id"]?.stringValue ?? "none"
        campaign["id"] = .string(campaignID)
        do {
            assigner = try VariantAssigner(campaign: campaign)
        } catch {
            throw JobParameterError(field: "campaign", message: error.message)
        }
        switch campaign["frequency_cap"] {
        case nil, .null?: frequencyCap = nil
        case let value?:
            guard let n = value.intValue, n >= 0 else { throw JobParameterError(field: "campaign.frequency_cap", "must be an integer >= 0") }
            frequencyCap = Int(n)
        }
        switch campaign["cap_action"] {
        case nil, .null?, .string("suppress")?: deferWhenCapped = false
        case .string("defer")?: deferWhenCapped = true
        default: throw JobParameterError(field: "campaign.cap_action", "must be \"defer\" or \"suppress\"")
        }
        switch job.data["variant"] {
        case nil, .null?: forcedVariant = nil
        case .string(let v)?: forcedVariant = v
        case let other?: throw .wrongType("data.variant", expected: "a string", got: other)
        }
        self.templateName = template
        self.profileID = profileID
        self.campaign = campaign
        self.campaignID = campaignID
        self.data = job.data
    }
}
