import AMQPClient
import FleetCore

/// The broker topology of a fleet: exchanges, queues and bindings, declared idempotently by
/// `fleet topology apply` and by every worker at start, and exported as `Ops/rabbitmq/definitions.json`.
///
/// - `<prefix>.jobs` (topic): jobs, routing key = kind or `kind.sub`; queue `<prefix>.<kind>` per kind.
/// - `<prefix>.delay` (headers) and queues `<prefix>.delay.<N>s`: retries and `not_before` waits, with
///   per-message TTL, dead-lettered back to `<prefix>.jobs` under the original routing key.
/// - `<prefix>.dead` (topic) and queues `<prefix>.dead.<kind>`: dead letters, with the reason in headers.
/// - `<prefix>.results` (topic), routing key `<kind>.<status>`; queue `<prefix>.results.all` bound to `#`,
///   bounded, as a default sink.
public struct FleetTopology: Sendable, Hashable {
    /// Classic queues (the default) or quorum queues (replicated; then with a delivery limit).
    public enum QueueType: String, Sendable, CaseIterable {
        case classic, quorum
    }

    /// The kinds of the standard fleet.
    public static let standardKinds = ["noop", "email", "push", "content", "crm"]
    /// Delay tiers in seconds: a delay of d goes to the largest tier ≤ d, so a message waits at most
    /// twice its delay behind the head of its queue.
    public static let delayTiers: [Int] = (0...12).map { 1 << $0 }  // 1 s ... 4096 s

    public var prefix: String
    public var kinds: [String]
    public var queueType: QueueType
    /// Quorum queues only: redeliveries before the broker dead-letters a message.
    public var deliveryLimit: Int
    /// Bound of `<prefix>.results.all`; the oldest results are dropped beyond it.
    public var resultsQueueMaxLength: Int

    public init(prefix: String = "fleet", kinds: [String] = FleetTopology.standardKinds,
                queueType: QueueType = .classic, deliveryLimit: Int = 20, resultsQueueMaxLength: Int = 1_000_000) {
        self.prefix = prefix
        self.kinds = kinds
        self.queueType = queueType
        self.deliveryLimit = deliveryLimit
        self.resultsQueueMaxLength = resultsQueueMaxLength
    }

    public var jobsExchange: String { "\(prefix).jobs" }
    public var resultsExchange: String { "\(prefix).results" }
    public var deadExchange: String { "\(prefix).dead" }
    public var delayExchange: String { "\(prefix).delay" }
    public var resultsQueue: String { "\(prefix).results.all" }
    public func queue(forKind kind: String) -> String { "\(prefix).\(kind)" }
    public func deadQueue(forKind kind: String) -> String { "\(prefix).dead.\(kind)" }
    public func delayQueue(tier seconds: Int) -> String { "\(prefix).delay.\(seconds)s" }

    /// The tier (in seconds) for a delay.
    public static func delayTier(for delay: Duration) -> Int {
        let seconds = delay.components.seconds
        return delayTiers.last(where: { Int64($0) <= seconds }) ?? delayTiers[0]
    }

    /// Arguments of a kind's job queue.
    public var jobQueueArguments: [String: AMQPFieldValue] {
        var arguments: [String: AMQPFieldValue] = [
            "x-queue-type": .string(queueType.rawValue),
            "x-dead-letter-exchange": .string(deadExchange),
        ]
        if queueType == .quorum {
            arguments["x-delivery-limit"] = .int(Int64(deliveryLimit))
            arguments.merge(Self.atLeastOnceDeadLettering) { $1 }
        }
        return arguments
    }

    /// Quorum queues dead-letter at most once unless asked (RabbitMQ 3.10+: `at-least-once`, which needs
    /// `reject-publish` overflow): a message that leaves for the dead-letter exchange is kept until that
    /// exchange's queues confirm it.
    static let atLeastOnceDeadLettering: [String: AMQPFieldValue] = [
        "x-dead-letter-strategy": .string("at-least-once"), "x-overflow": .string("reject-publish"),
    ]

    /// Arguments of a dead-letter queue.
    public var deadQueueArguments: [String: AMQPFieldValue] { ["x-queue-type": .string(queueType.rawValue)] }

    /// Arguments of a delay queue: per-message TTL, then dead-lettered back to the jobs exchange (at least once
    /// on quorum queues).
    public var delayQueueArguments: [String: AMQPFieldValue] {
        var arguments: [String: AMQPFieldValue] = [
            "x-queue-type": .string(queueType.rawValue),
            "x-dead-letter-exchange": .string(jobsExchange),
        ]
        if queueType == .quorum { arguments.merge(Self.atLeastOnceDeadLettering) { $1 } }
        return arguments
    }

    /// Arguments of the default results queue: bounded, the oldest dropped.
    public var resultsQueueArguments: [String: AMQPFieldValue] {
        [
            "x-queue-type": .string(queueType.rawValue),
            "x-max-length": .int(Int64(resultsQueueMaxLength)),
            "x-overflow": .string("drop-head"),
        ]
    }

    /// Everything to declare, in dependency order (exchanges, queues, bindings).
    public var declarations: [AMQPDeclaration] {
        var exchanges: [AMQPDeclaration] = [
            .exchange(.init(name: jobsExchange, type: "topic")),
            .exchange(.init(name: resultsExchange, type: "topic")),
            .exchange(.init(name: deadExchange, type: "topic")),
            .exchange(.init(name: delayExchange, type: "headers")),
        ]
        var queues: [AMQPDeclaration] = []
        var bindings: [AMQPDeclaration] = []
        for kind in kinds {
            queues.append(.queue(.init(name: queue(forKind: kind), arguments: jobQueueArguments)))
            queues.append(.queue(.init(name: deadQueue(forKind: kind), arguments: deadQueueArguments)))
            for key in [kind, "\(kind).#"] {
                bindings.append(.binding(.init(queue: queue(forKind: kind), exchange: jobsExchange, routingKey: key)))
                bindings.append(.binding(.init(queue: deadQueue(forKind: kind), exchange: deadExchange, routingKey: key)))
            }
        }
        for tier in Self.delayTiers {
            queues.append(.queue(.init(name: delayQueue(tier: tier), arguments: delayQueueArguments)))
            bindings.append(.binding(.init(
                queue: delayQueue(tier: tier), exchange: delayExchange, routingKey: "",
                arguments: ["x-match": .string("all"), FleetHeaders.delay: .string("\(tier)s")])))
        }
        queues.append(.queue(.init(name: resultsQueue, arguments: resultsQueueArguments)))
        bindings.append(.binding(.init(queue: resultsQueue, exchange: resultsExchange, routingKey: "#")))
        exchanges.append(contentsOf: queues)
        exchanges.append(contentsOf: bindings)
        return exchanges
    }

    /// The topology as RabbitMQ definitions (for `rabbitmqctl import_definitions` or the management UI).
    public func definitions(vhost: String = "/") -> JSONValue {
        var exchanges: [JSONValue] = []
        var queues: [JSONValue] = []
        var bindings: [JSONValue] = []
        for declaration in declarations {
            switch declaration {
            case .exchange(let e):
                exchanges.append([
                    "name": .string(e.name), "vhost": .string(vhost), "type": .string(e.type),
                    "durable": .bool(e.durable), "auto_delete": .bool(e.autoDelete), "internal": .bool(e.isInternal),
                    "arguments": Self.json(e.arguments),
                ])
            case .queue(let q):
                queues.append([
                    "name": .string(q.name), "vhost": .string(vhost), "durable": .bool(q.durable),
                    "auto_delete": .bool(q.autoDelete), "arguments": Self.json(q.arguments),
                ])
            case .binding(let b):
                bindings.append([
                    "source": .string(b.exchange), "vhost": .string(vhost), "destination": .string(b.queue),
                    "destination_type": "queue", "routing_key": .string(b.routingKey),
                    "arguments": Self.json(b.arguments),
                ])
            }
        }
        return ["exchanges": .array(exchanges), "queues": .array(queues), "bindings": .array(bindings)]
    }

    static func json(_ fields: [String: AMQPFieldValue]) -> JSONValue {
        var o = JSONObject()
        for key in fields.keys.sorted() {
            switch fields[key]! {
            case .string(let s): o[key] = .string(s)
            case .int(let i): o[key] = .int(i)
            case .bool(let b): o[key] = .bool(b)
            case .double(let d): o[key] = .double(d)
            default: o[key] = .string(fields[key]!.description)
            }
        }
        return .object(o)
    }
}
