import AMQPClient
import ArgumentParser
import FleetAMQP
import FleetCore
import Foundation

/// `fleet topology apply|export`.
struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology", abstract: "Declare or export the broker topology.",
        subcommands: [Apply.self, Export.self])

    struct Options: ParsableArguments {
        @Option(name: .customLong("queue-type"), help: "classic (default) or quorum job queues.")
        var queueType: String?

        @Option(name: .customLong("delivery-limit"), help: "Quorum queues: redeliveries before the broker dead-letters (default 20).")
        var deliveryLimit: Int?

        @Option(help: "Comma-separated kinds (default noop,email,push,content,crm).")
        var kinds: String?

        func apply(to topology: inout FleetTopology, settings: FleetSettings) throws {
            if let type = queueType {
                guard let t = FleetTopology.QueueType(rawValue: type) else {
                    throw CLIError.usage("--queue-type must be classic or quorum")
                }
                topology.queueType = t
            }
            if let deliveryLimit {
                guard deliveryLimit >= 1 else { throw CLIError.usage("--delivery-limit must be at least 1") }
                topology.deliveryLimit = deliveryLimit
            }
            if let kinds {
                let list = kinds.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                for kind in list where !JobEnvelope.isValidKind(kind) {
                    throw CLIError.usage("'\(kind)' is not a valid kind name")
                }
                topology.kinds = list
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Declare exchanges, queues and bindings (idempotent).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: Options

        func run() async throws {
            let logger = try global.bootstrapLogging()
            var topology = try global.topology()
            try options.apply(to: &topology, settings: global.settings())
            let connection = try await global.connect(name: "fleet topology apply", logger: logger)
            do {
                try await connection.declare(topology.declarations, redeclareOnReconnect: false)
            } catch let error as AMQPError {
                await connection.close()
                if error.code == .preconditionFailed {
                    throw CLIError(Self.migration(error.message, topology: topology))
                }
                throw CLIError("topology apply failed: \(error.message)")
            }
            await connection.close()
            let counts = topology.declarations.reduce(into: (0, 0, 0)) { c, d in
                switch d {
                case .exchange: c.0 += 1
                case .queue: c.1 += 1
                case .binding: c.2 += 1
                }
            }
            print("topology applied: \(counts.0) exchanges, \(counts.1) queues (all \(topology.queueType.rawValue)), \(counts.2) bindings, prefix '\(topology.prefix)'")
        }

        /// What differs (the broker's words) and how to move, when the broker holds queues of the prefix with
        /// another type or other arguments (a classic topology, or quorum queues declared by an older fleet).
        static func migration(_ brokerMessage: String, topology: FleetTopology) -> String {
            """
            the broker has queues of prefix '\(topology.prefix)' declared otherwise: \(brokerMessage). \
            RabbitMQ cannot change a queue's type or arguments in place (see README, "A fleet on a cluster"). To move to \
            \(topology.queueType.rawValue) queues: stop schedulers and workers, let the queues drain (fleet status), delete the \
            prefix's queues (rabbitmqctl delete_queue NAME, each of 'fleet topology export'), run 'fleet topology apply \
            --queue-type \(topology.queueType.rawValue)', and \
            start the workers with FLEET_QUEUE_TYPE=\(topology.queueType.rawValue); or, without a pause, apply the topology \
            under a new prefix (--prefix), move schedulers and workers to it, and drain the old one.
            """
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the topology as RabbitMQ definitions JSON (for rabbitmqctl import_definitions).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: Options
        @Option(help: "The vhost named in the definitions (default /).")
        var vhost: String = "/"

        func run() async throws {
            var topology = try global.topology()
            try options.apply(to: &topology, settings: global.settings())
            print(topology.definitions(vhost: vhost).prettyPrinted())
        }
    }
}
