import FleetCore
import FleetMarketing
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
        let campaign = try CampaignParameters(job: job)
        assigner = campaign.assigner
        frequencyCap = campaign.frequencyCap
        deferWhenCapped = campaign.deferWhenCapped
        forcedVariant = campaign.forcedVariant
        campaignID = campaign.id
        self.campaign = campaign.object
        self.templateName = template
        self.profileID = profileID
        self.data = job.data
    }
}
