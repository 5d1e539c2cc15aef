/// Why a campaign command could not do its work: `unknown_segment`, `campaign_mismatch` (the id was used for
/// another kind, template or segment), `campaign_cancelled`, `unknown_campaign`, `unroutable` (no queue for the
/// kind), `broker_lost` (the broker did not come back; the next run resumes).
public struct CampaignError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
