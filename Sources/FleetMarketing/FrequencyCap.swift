import FleetCore
import FleetRuntime
import Foundation
import ProfileStore

/// The daily frequency caps of marketing messages, per person and local day, in the profile store's one cap table
/// that every channel's workers share: a cap per channel (`FLEET_EMAIL_FREQUENCY_CAP`, `FLEET_PUSH_FREQUENCY_CAP`,
/// or the campaign's `frequency_cap`) and one across channels (`FLEET_FREQUENCY_CAP_ALL`: email and push together).
/// A job counts once, whatever its retries and redeliveries.
public struct FrequencyCap: Sendable {
    /// The channels whose messages the cross-channel cap counts.
    public static let channels = ["email", "push"]

    /// This channel's daily limit (0: none).
    public var channelLimit: Int
    /// Messages of every channel per day (0: none).
    public var allChannelsLimit: Int

    public init(channelLimit: Int, allChannelsLimit: Int) {
        self.channelLimit = channelLimit
        self.allChannelsLimit = allChannelsLimit
    }

    /// The setting of the cross-channel cap (read by the email and push workers).
    public static let allChannelsSetting = Setting(
        environment: "FLEET_FREQUENCY_CAP_ALL", defaultValue: "`0` (no cap)", scope: "kinds email, push",
        summary: "Marketing messages (email and push together) per person per local day; each kind's own cap applies too. Workers of both kinds must have the same value.")

    /// Reads `FLEET_FREQUENCY_CAP_ALL`; nil when it is not a non-negative integer.
    public static func allChannelsLimit(_ environment: [String: String]) -> Int? {
        guard let raw = environment["FLEET_FREQUENCY_CAP_ALL"], !raw.isEmpty else { return 0 }
        guard let n = Int(raw), n >= 0 else { return nil }
        return n
    }

    /// Counts the job on `channel` if every cap has room: nil to go on, else the outcome: `deferred` (reason
    /// `frequency_cap`) to 00:01 of the person's next local day when `deferWhenCapped`, else `suppressed` /
    /// `frequency_cap` with the limit and the day.
    public func admit(store: any FrequencyCapStore, channel: String, jobID: String, profileID: String, timezone: String?,
                      deferWhenCapped: Bool, now: Date, output: JSONObject = JSONObject()) async throws -> JobOutcome? {
        guard channelLimit > 0 || allChannelsLimit > 0 else { return nil }
        let local = LocalDay(timezone: timezone)
        let day = local.day(of: now)
        let allowed = try await store.reserveCap(
            jobID: jobID, profileID: profileID, channel: channel, day: day,
            limits: [CapLimit(channels: [channel], limit: channelLimit), CapLimit(channels: Self.channels, limit: allChannelsLimit)])
        if allowed { return nil }
        if deferWhenCapped { return .deferred(until: local.nextMidnight(after: now).addingTimeInterval(60), reason: "frequency_cap") }
        var out = output
        out["limit"] = .int(Int64(channelLimit > 0 ? channelLimit : allChannelsLimit))
        if allChannelsLimit > 0 { out["limit_all_channels"] = .int(Int64(allChannelsLimit)) }
        out["day"] = .string(day)
        return .suppressed(reason: "frequency_cap", output: .object(out))
    }
}
