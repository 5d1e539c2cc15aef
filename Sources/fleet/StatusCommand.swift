import AMQPClient
import ArgumentParser
import FleetAMQP
import FleetCore
import Foundation

/// `fleet status`: depth and consumers of every fleet queue.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show ready messages and consumers per queue, and dead-letter counts.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Comma-separated kinds (default noop,email,push,content,crm).")
    var kinds: String?

    @Option(name: .customLong("management-url"),
            help: "RabbitMQ's management API, http://user:password@host:15672 (env FLEET_MANAGEMENT_URL): adds each queue's type, leader and members.")
    var managementURL: String?

    func run() async throws {
        let logger = try global.bootstrapLogging()
        var topology = try global.topology()
        if let kinds { topology.kinds = kinds.split(separator: ",").map(String.init) }
        let connection = try await global.connect(name: "fleet status", logger: logger)
        var rows: [(role: String, kind: String, status: AMQPQueueStatus?)] = []
        for kind in topology.kinds {
            rows.append(("jobs", kind, try await connection.queueStatus(topology.queue(forKind: kind))))
            rows.append(("dead", kind, try await connection.queueStatus(topology.deadQueue(forKind: kind))))
        }
        for tier in FleetTopology.delayTiers {
            rows.append(("delay", "\(tier)s", try await connection.queueStatus(topology.delayQueue(tier: tier))))
        }
        rows.append(("results", "all", try await connection.queueStatus(topology.resultsQueue)))
        await connection.close()
        var placements: [String: ManagementAPI.Placement]?
        if let url = try managementURL ?? global.env("FLEET_MANAGEMENT_URL") ?? global.settings().string("management_url") {
            placements = try await ManagementAPI(url: url).queues(vhost: try global.amqpConfiguration(name: "fleet status").virtualHost)
        }

        let names = rows.map { row -> String in
            switch row.role {
            case "jobs": return topology.queue(forKind: row.kind)
            case "dead": return topology.deadQueue(forKind: row.kind)
            case "delay": return topology.delayQueue(tier: Int(row.kind.dropLast()) ?? 0)
            default: return topology.resultsQueue
            }
        }
        if json {
            var queues: [JSONValue] = []
            for (row, name) in zip(rows, names) {
                var o = JSONObject()
                o["name"] = .string(name)
                o["role"] = .string(row.role)
                o["exists"] = .bool(row.status != nil)
                o["messages"] = .int(Int64(row.status?.messages ?? 0))
                o["consumers"] = .int(Int64(row.status?.consumers ?? 0))
                if let p = placements?[name] {
                    o["type"] = .string(p.type)
                    o["leader"] = p.leader.map { .string($0) } ?? .null
                    o["members"] = .array(p.members.map { .string($0) })
                    o["online"] = .array(p.online.map { .string($0) })
                }
                queues.append(.object(o))
            }
            let delayed = rows.filter { $0.role == "delay" }.reduce(0) { $0 + Int($1.status?.messages ?? 0) }
            print(JSONValue.object(JSONObject(["queues": .array(queues), "delayed": .int(Int64(delayed))])).jsonString)
            return
        }
        print(pad("QUEUE", 28) + pad("READY", 10) + (placements == nil ? "CONSUMERS" : pad("CONSUMERS", 11) + pad("TYPE", 9) + "LEADER / MEMBERS"))
        func placement(_ name: String) -> String {
            guard let placements else { return "" }
            guard let p = placements[name] else { return "" }
            // Classic queues list no members; a quorum queue with none online shows them all down.
            let members = p.members.map { p.online.contains($0) ? $0 : "\($0) (down)" }
            return pad(p.type, 9) + (p.leader ?? "-") + (members.isEmpty ? "" : " / " + members.joined(separator: ", "))
        }
        for (row, name) in zip(rows, names) where row.role != "delay" {
            guard let s = row.status else {
                print(pad(name, 28) + "missing (run 'fleet topology apply')")
                continue
            }
            print(pad(name, 28) + pad(String(s.messages), 10) + (placements == nil ? String(s.consumers) : pad(String(s.consumers), 11) + placement(name)))
        }
        if let placements {
            // The delay queues are one line above; their placement, each, here.
            for tier in FleetTopology.delayTiers where placements[topology.delayQueue(tier: tier)] != nil {
                print(pad(topology.delayQueue(tier: tier), 28) + pad("", 10) + pad("", 11) + placement(topology.delayQueue(tier: tier)))
            }
        }
        let delayed = rows.filter { $0.role == "delay" }.reduce(0) { $0 + Int($1.status?.messages ?? 0) }
        print(pad("\(topology.prefix).delay.*", 28) + pad(String(delayed), 10) + "-   (retries and not_before waits)")
        let dead = rows.filter { $0.role == "dead" }.reduce(0) { $0 + Int($1.status?.messages ?? 0) }
        if dead > 0 { print("\(dead) dead-lettered jobs: 'fleet dlq list --kind KIND' shows why") }
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}
