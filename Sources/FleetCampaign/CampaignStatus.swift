import FleetCore
import FleetStore
import Foundation
import ProfileStore

/// Where a campaign stands: its jobs the broker confirmed, the final results the workers recorded in their ledger
/// (by status; `suppressed` by reason, `dead` by error code), and the jobs not finished yet, of which those whose
/// `not_before` is still ahead (held in the delay queues, or not yet taken).
public struct CampaignStatus: Sendable {
    public var confirmed: Int
    public var finals: Int
    public var byStatus: [String: Int] = [:]
    /// `suppressed` results by `output.reason`, and `dead` ones by `error.code`.
    public var suppressedReasons: [String: Int] = [:]
    public var deadCodes: [String: Int] = [:]
    public var notYetDue: Int

    /// Jobs confirmed and without a final result.
    public var unfinished: Int { max(0, confirmed - finals) }

    public init(entries: [LedgerEntry], confirmed: Int, notYetDue: Int) {
        self.confirmed = confirmed
        self.notYetDue = notYetDue
        finals = entries.count
        for entry in entries {
            byStatus[entry.status, default: 0] += 1
            guard entry.status == "suppressed" || entry.status == "dead",
                  let result = try? JSONValue(parsing: entry.result) else { continue }
            if entry.status == "suppressed" {
                suppressedReasons[result["output"]?["reason"]?.stringValue ?? "unknown", default: 0] += 1
            } else {
                deadCodes[result["error"]?["code"]?.stringValue ?? "unknown", default: 0] += 1
            }
        }
    }

    public func text(_ record: CampaignRecord) -> String {
        var lines = ["campaign \(record.id) (\(record.kind), template \(record.template), segment \(record.segment))"
                     + (record.cancelledAt != nil ? ": CANCELLED" : "")]
        lines.append("jobs confirmed: \(confirmed)")
        lines.append("final results: \(finals)"
                     + (byStatus.isEmpty ? "" : " (" + byStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"))
        if !suppressedReasons.isEmpty {
            lines.append("  suppressed by reason: " + suppressedReasons.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if !deadCodes.isEmpty {
            lines.append("  dead by error: " + deadCodes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        lines.append("not finished: \(unfinished) (of which \(min(notYetDue, unfinished)) wait for their not_before in the delay queues; the rest are queued or running)")
        return lines.joined(separator: "\n")
    }

    /// Counts by name as a JSON object, names in order.
    static func object(_ d: [String: Int]) -> JSONValue {
        var o = JSONObject()
        for (k, v) in d.sorted(by: { $0.key < $1.key }) { o[k] = .int(Int64(v)) }
        return .object(o)
    }

    public func json(_ record: CampaignRecord) -> String {
        let object = Self.object
        var o = JSONObject()
        o["campaign_id"] = .string(record.id)
        o["kind"] = .string(record.kind)
        o["template"] = .string(record.template)
        o["segment"] = .string(record.segment)
        o["cancelled"] = .bool(record.cancelledAt != nil)
        o["confirmed"] = .int(Int64(confirmed))
        o["finals"] = .int(Int64(finals))
        o["by_status"] = object(byStatus)
        o["suppressed_by_reason"] = object(suppressedReasons)
        o["dead_by_error"] = object(deadCodes)
        o["unfinished"] = .int(Int64(unfinished))
        o["not_yet_due"] = .int(Int64(min(notYetDue, unfinished)))
        return JSONValue.object(o).jsonString
    }
}
