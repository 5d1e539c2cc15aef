import AMQPClient
import ArgumentParser
import FleetAMQP
import FleetCore
import Foundation

/// `fleet dlq list|replay --kind K`.
struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "Inspect or replay dead-lettered jobs.", subcommands: [List.self, Replay.self])

    struct Options: ParsableArguments {
        @Option(help: "The job kind whose dead-letter queue to use.")
        var kind: String

        @Option(help: "At most this many messages (default: 20 for list; for replay, every message in the queue when it starts).")
        var limit: Int?

        func validate() throws {
            guard JobEnvelope.isValidKind(kind) else { throw ValidationError("'\(kind)' is not a valid kind name") }
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show dead-lettered jobs and why (they stay in the queue).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: Options
        @Flag(help: "One JSON object a line.") var json = false

        func run() async throws {
            let logger = try global.bootstrapLogging()
            let topology = try global.topology()
            let connection = try await global.connect(name: "fleet dlq list", logger: logger)
            let queue = topology.deadQueue(forKind: options.kind)
            guard let status = try await connection.queueStatus(queue) else {
                await connection.close()
                throw CLIError("no queue \(queue): run 'fleet topology apply'", exitCode: CLIError.notFound)
            }
            let json = self.json
            if !json { print("\(queue): \(status.messages) dead-lettered jobs") }
            let lines = LinesBox()
            _ = try await QueueReader.read(connection, queue: queue, limit: options.limit ?? 20) { delivery in
                let h = delivery.properties.headers
                var o = JSONObject()
                o["message_id"] = delivery.properties.messageID.map(JSONValue.string) ?? .null
                o["error_code"] = h[FleetHeaders.errorCode]?.stringValue.map(JSONValue.string) ?? .null
                o["error_message"] = h[FleetHeaders.errorMessage]?.stringValue.map(JSONValue.string) ?? .null
                o["attempt"] = h[FleetHeaders.attempt]?.intValue.map(JSONValue.int) ?? .null
                o["dead_at"] = h[FleetHeaders.deadAt]?.stringValue.map(JSONValue.string) ?? .null
                o["routing_key"] = .string(h[FleetHeaders.originalRoutingKey]?.stringValue ?? delivery.routingKey)
                o["bytes"] = .int(Int64(delivery.body.count))
                lines.append(JSONValue.object(o))
            }
            // Closing without acks: the broker puts every message back in the queue.
            await connection.close()
            for o in lines.values {
                if json {
                    print(o.jsonString)
                } else {
                    let id = o["message_id"]?.stringValue ?? "(no id)"
                    let code = o["error_code"]?.stringValue ?? "?"
                    let message = o["error_message"]?.stringValue ?? ""
                    let at = o["dead_at"]?.stringValue ?? ""
                    print("  \(id)  \(code)  \(message)  [attempt \(o["attempt"]?.intValue ?? 1), \(at)]")
                }
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send dead-lettered jobs back to run again (attempts reset), with confirms.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: Options

        func run() async throws {
            let logger = try global.bootstrapLogging()
            let topology = try global.topology()
            let connection = try await global.connect(name: "fleet dlq replay", logger: logger)
            let queue = topology.deadQueue(forKind: options.kind)
            guard let status = try await connection.queueStatus(queue) else {
                await connection.close()
                throw CLIError("no queue \(queue): run 'fleet topology apply'", exitCode: CLIError.notFound)
            }
            // Only the dead letters there now: a replayed job that dies again goes to the back of the queue,
            // and reading on would replay it again, for ever. The queue is FIFO, so the first `status.messages`
            // are those that were there when the replay started.
            let limit = min(options.limit ?? Int.max, Int(status.messages))
            guard limit > 0 else {
                await connection.close()
                print("replayed 0 jobs from \(queue) (it is empty)")
                return
            }
            let exchange = topology.jobsExchange
            let failures = LinesBox()
            let count = try await QueueReader.read(connection, queue: queue, limit: limit) { delivery in
                var properties = delivery.properties
                for key in properties.headers.keys where key.hasPrefix("x-fleet-") || key.hasPrefix("x-death") || key.hasPrefix("x-first-death") || key.hasPrefix("x-last-death") {
                    properties.headers[key] = nil
                }
                properties.headers[FleetHeaders.replay] = .bool(true)
                let routingKey = delivery.properties.headers[FleetHeaders.originalRoutingKey]?.stringValue ?? delivery.routingKey
                let confirm = try await connection.publish(delivery.body, to: exchange, routingKey: routingKey, properties: properties)
                if confirm == .acked {
                    connection.ack(delivery)
                } else {
                    failures.append(.string("\(delivery.properties.messageID ?? "?"): \(confirm)"))
                    connection.reject(delivery, requeue: true)
                }
            }
            await connection.close()
            let failed = failures.values.count
            print("replayed \(count - failed) jobs from \(queue)" + (failed > 0 ? "; \(failed) could not be routed and stay dead" : ""))
            if failed > 0 { throw CLIError("\(failed) jobs were not replayed") }
        }
    }
}
