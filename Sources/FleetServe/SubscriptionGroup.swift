import FleetCore
import Foundation

/// A subscription group the preference centre lists: the `subscription_group` of a marketing email template, with
/// its `list_name` as the label.
public struct SubscriptionGroup: Sendable, Hashable {
    public var id: String
    public var label: String

    public init(id: String, label: String) {
        self.id = id
        self.label = label
    }

    /// The groups of the marketing templates under `<templates>/email/*/meta.json`, by id (unreadable metas are
    /// skipped: `fleet template check` reports them).
    public static func load(templatesDirectory: String) -> [SubscriptionGroup] {
        let dir = templatesDirectory + "/email"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        var groups: [String: SubscriptionGroup] = [:]
        for name in names.sorted() {
            guard let data = FileManager.default.contents(atPath: "\(dir)/\(name)/meta.json"),
                  let meta = try? JSONValue(parsing: Array(data)),
                  (meta["category"]?.stringValue ?? "marketing") == "marketing",
                  let group = meta["subscription_group"]?.stringValue, !group.isEmpty, groups[group] == nil else { continue }
            groups[group] = SubscriptionGroup(id: group, label: meta["list_name"]?.stringValue ?? group)
        }
        return groups.values.sorted { $0.id < $1.id }
    }
}
