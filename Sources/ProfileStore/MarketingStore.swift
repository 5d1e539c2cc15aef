import FleetCore

/// What a marketing worker (the email kind) reads of a person and writes back, on either backend.
///
/// `ProfileStore` (SQLite) and `PostgresProfileStore` implement it; Tests/FleetPostgresTests/ProfileBackendTests
/// runs one suite against both.
public protocol MarketingStore: Sendable {
    /// The person as a send needs them, in one call: their read model (with segments), whether their id is
    /// suppressed (when there is no profile: an erased person), whether their email address is suppressed, whether
    /// the campaign `campaignID` was cancelled, and the content worker's unexpired blocks for them.
    func person(id: String, campaignID: String?, now: Int64) async throws -> PersonRead

    /// Adds an address to the suppression list of `channel` (its hash only), e.g. after a hard bounce.
    func suppress(address: String, channel: AddressHasher.Channel, reason: String) async throws
}

/// Everything the email kind needs of the store.
public typealias EmailStore = MarketingStore & FrequencyCapStore & CatalogStore

/// A person as a send needs them (``MarketingStore/person(id:campaignID:now:)``).
public struct PersonRead: Sendable {
    public var view: ProfileView?
    /// No profile, and its id is suppressed (the person was erased).
    public var profileSuppressed: Bool
    /// The profile's email address is suppressed.
    public var emailSuppressed: Bool
    /// `fleet campaign cancel` cancelled the campaign asked about.
    public var campaignCancelled: Bool
    /// The content worker's unexpired blocks for the person, by slot (`content.<slot>` in templates).
    public var content: [String: JSONValue]

    public init(view: ProfileView?, profileSuppressed: Bool, emailSuppressed: Bool, campaignCancelled: Bool,
                content: [String: JSONValue]) {
        self.view = view
        self.profileSuppressed = profileSuppressed
        self.emailSuppressed = emailSuppressed
        self.campaignCancelled = campaignCancelled
        self.content = content
    }
}

extension ProfileStore: MarketingStore {
    public func person(id: String, campaignID: String?, now: Int64) async throws -> PersonRead {
        try await read { reader in
            let view = try reader.view(id: id)
            let profileSuppressed = view == nil ? try reader.isSuppressed(address: id, channel: .profile) : false
            let emailSuppressed = try view?.email.map { try reader.isSuppressed(address: $0, channel: .email) } ?? false
            let cancelled = try campaignID.map { try reader.isCampaignCancelled($0) } ?? false
            let content = try view.map { try reader.contentBlocks(profileID: $0.id, now: now) } ?? [:]
            return PersonRead(view: view, profileSuppressed: profileSuppressed, emailSuppressed: emailSuppressed,
                              campaignCancelled: cancelled, content: content)
        }
    }
}
