import FleetCore
import FleetRuntime

/// The campaign of a marketing job (email, push), as every marketing kind reads it: `campaign` is a string id or an
/// object with at least a string `id` (`data.campaign` is merged into it, the top level winning), with optional
/// `variants`, `holdout`, `frequency_cap`, `cap_action`; `data.variant` forces a variant (tests, previews).
///
/// Wrong values throw ``JobParameterError`` naming the field: the job is `dead` / `invalid_parameters` before its
/// handler runs.
public struct CampaignParameters: Sendable {
    /// The campaign object (`id` always set: `none` without a campaign).
    public var object: JSONObject
    public var id: String
    /// The campaign's variants and holdout.
    public var assigner: VariantAssigner
    /// `campaign.frequency_cap`, when the campaign sets one.
    public var frequencyCap: Int?
    /// `campaign.cap_action`: `defer` (run again on the person's next local day) or `suppress` (the default).
    public var deferWhenCapped: Bool
    /// `data.variant`.
    public var forcedVariant: String?

    public init(job: JobEnvelope) throws(JobParameterError) {
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
        id = campaign["id"]?.stringValue ?? "none"
        campaign["id"] = .string(id)
        assigner = try VariantAssigner(campaign: campaign)
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
        object = campaign
    }

    /// The person's variant, or the holdout.
    public func assign(profileID: String) -> VariantAssigner.Assignment {
        assigner.assign(campaignID: id, profileID: profileID, forced: forcedVariant)
    }
}
