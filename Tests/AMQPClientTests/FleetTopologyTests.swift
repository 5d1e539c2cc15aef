import AMQPClient
import FleetAMQP
import FleetCore
import Testing

@Suite("FleetTopology")
struct FleetTopologyTests {
    @Test("names follow the prefix")
    func names() {
        let t = FleetTopology(prefix: "acme")
        #expect(t.jobsExchange == "acme.jobs")
        #expect(t.resultsExchange == "acme.results")
        #expect(t.deadExchange == "acme.dead")
        #expect(t.delayExchange == "acme.delay")
        #expect(t.resultsQueue == "acme.results.all")
        #expect(t.queue(forKind: "email") == "acme.email")
        #expect(t.deadQueue(forKind: "email") == "acme.dead.email")
        #expect(t.delayQueue(tier: 4) == "acme.delay.4s")
        let d = FleetTopology()
        #expect(d.prefix == "fleet")
        #expect(d.kinds == ["noop", "email", "push", "content", "crm"])
        #expect(d.queue(forKind: "noop") == "fleet.noop")
    }

    @Test("the delay tiers are 1 s to 4096 s, doubling")
    func tiers() {
        #expect(FleetTopology.delayTiers.count == 13)
        #expect(FleetTopology.delayTiers.first == 1)
        #expect(FleetTopology.delayTiers.last == 4096)
        for (a, b) in zip(FleetTopology.delayTiers, FleetTopology.delayTiers.dropFirst()) { #expect(b == 2 * a) }
    }

    @Test("delayTier(for:) picks the largest tier <= the delay (1 s at least)", arguments: [
        (Duration.milliseconds(500), 1),
        (.zero, 1),
        (.milliseconds(1), 1),
        (.seconds(1), 1),
        (.milliseconds(1999), 1),
        (.seconds(2), 2),
        (.seconds(3), 2),
        (.milliseconds(3999), 2),
        (.seconds(4), 4),
        (.seconds(7), 4),
        (.seconds(100), 64),
        (.seconds(4095), 2048),
        (.seconds(4096), 4096),
        (.seconds(5000), 4096),
        (.seconds(86_400), 4096),
    ])
    func delayTier(delay: Duration, tier: Int) {
        #expect(FleetTopology.delayTier(for: delay) == tier)
    }

    @Test("a tier never exceeds a delay of 1 s or more, and is more than half of it")
    func tierBounds() {
        for seconds in 1...5000 {
            let tier = FleetTopology.delayTier(for: .seconds(seconds))
            #expect(FleetTopology.delayTiers.contains(tier))
            if tier > seconds || (seconds < 8192 && 2 * tier <= seconds) {
                Issue.record("\(seconds) s -> tier \(tier)")
            }
        }
    }

    private static func parts(_ t: FleetTopology)
        -> (exchanges: [AMQPDeclaration.Exchange], queues: [AMQPDeclaration.Queue], bindings: [AMQPDeclaration.Binding])
    {
        var e: [AMQPDeclaration.Exchange] = []
        var q: [AMQPDeclaration.Queue] = []
        var b: [AMQPDeclaration.Binding] = []
        for d in t.declarations {
            switch d {
            case .exchange(let x): e.append(x)
            case .queue(let x): q.append(x)
            case .binding(let x): b.append(x)
            }
        }
        return (e, q, b)
    }

    @Test("quorum job queues have a delivery limit and dead-letter to the dead exchange", arguments: [
        FleetTopology(queueType: .quorum),
        FleetTopology(prefix: "q2", kinds: ["alpha", "beta"], queueType: .quorum, deliveryLimit: 7),
    ])
    func quorum(topology: FleetTopology) throws {
        let queues = Self.parts(topology).queues
        for kind in topology.kinds {
            let q = try #require(queues.first { $0.name == topology.queue(forKind: kind) }, "no queue for \(kind)")
            #expect(q.durable)
            #expect(q.arguments["x-queue-type"] == .string("quorum"))
            #expect(q.arguments["x-delivery-limit"] == .int(Int64(topology.deliveryLimit)))
            #expect(q.arguments["x-dead-letter-exchange"] == .string(topology.deadExchange))
            let dead = try #require(queues.first { $0.name == topology.deadQueue(forKind: kind) })
            #expect(dead.arguments["x-delivery-limit"] == nil)
        }
    }

    /// Classic job queues have no delivery limit (a classic queue does not support one). They do keep
    /// `x-dead-letter-exchange`: the committed definitions and the contract declare it for both types.
    @Test("classic job queues have no quorum arguments", arguments: [
        FleetTopology(),
        FleetTopology(prefix: "c2", kinds: ["alpha"], queueType: .classic, deliveryLimit: 3),
    ])
    func classic(topology: FleetTopology) throws {
        let queues = Self.parts(topology).queues
        #expect(!queues.contains { $0.arguments["x-delivery-limit"] != nil })
        #expect(!queues.contains { $0.arguments["x-queue-type"] == .string("quorum") })
        for kind in topology.kinds {
            let q = try #require(queues.first { $0.name == topology.queue(forKind: kind) }, "no queue for \(kind)")
            #expect(q.durable)
            #expect(q.arguments["x-queue-type"] == .string("classic"))
            #expect(q.arguments["x-dead-letter-exchange"] == .string(topology.deadExchange))
        }
    }

    @Test("every kind has its job and dead queue; every tier its delay queue; results have their queue", arguments: [
        FleetTopology(), FleetTopology(prefix: "x", kinds: ["one"], queueType: .quorum),
    ])
    func queuesDeclared(topology: FleetTopology) {
        let (exchanges, queues, _) = Self.parts(topology)
        let names = Set(queues.map(\.name))
        #expect(names.count == queues.count, "a queue is declared twice")
        for kind in topology.kinds {
            #expect(names.contains(topology.queue(forKind: kind)))
            #expect(names.contains(topology.deadQueue(forKind: kind)))
        }
        for tier in FleetTopology.delayTiers {
            #expect(names.contains(topology.delayQueue(tier: tier)))
        }
        #expect(names.contains(topology.resultsQueue))
        #expect(queues.count == 2 * topology.kinds.count + FleetTopology.delayTiers.count + 1)
        let exchangeTypes = Dictionary(uniqueKeysWithValues: exchanges.map { ($0.name, $0.type) })
        #expect(exchangeTypes == [
            topology.jobsExchange: "topic", topology.resultsExchange: "topic", topology.deadExchange: "topic",
            topology.delayExchange: "headers",
        ])
        // Delay queues dead-letter back to the jobs exchange.
        for q in queues where q.name.hasPrefix("\(topology.prefix).delay.") {
            #expect(q.arguments["x-dead-letter-exchange"] == .string(topology.jobsExchange))
        }
        let results = queues.first { $0.name == topology.resultsQueue }
        #expect(results?.arguments["x-max-length"] == .int(Int64(topology.resultsQueueMaxLength)))
    }

    @Test("every binding refers to a declared queue and exchange, declared before it", arguments: [
        FleetTopology(), FleetTopology(prefix: "p", kinds: ["a", "b-c"], queueType: .quorum),
    ])
    func bindingsResolve(topology: FleetTopology) {
        var exchanges = Set<String>()
        var queues = Set<String>()
        var bindingCount = 0
        for d in topology.declarations {
            switch d {
            case .exchange(let e): exchanges.insert(e.name)
            case .queue(let q): queues.insert(q.name)
            case .binding(let b):
                bindingCount += 1
                #expect(queues.contains(b.queue), "binding to undeclared queue \(b.queue)")
                #expect(exchanges.contains(b.exchange), "binding to undeclared exchange \(b.exchange)")
            }
        }
        #expect(bindingCount == 4 * topology.kinds.count + FleetTopology.delayTiers.count + 1)
    }

    @Test("kinds are routed with their name and sub-keys; delay tiers by header")
    func bindingKeys() {
        let t = FleetTopology(prefix: "r", kinds: ["email"])
        let bindings = Self.parts(t).bindings
        let jobKeys = Set(bindings.filter { $0.queue == "r.email" && $0.exchange == "r.jobs" }.map(\.routingKey))
        #expect(jobKeys == ["email", "email.#"])
        let deadKeys = Set(bindings.filter { $0.queue == "r.dead.email" && $0.exchange == "r.dead" }.map(\.routingKey))
        #expect(deadKeys == ["email", "email.#"])
        let tier = bindings.first { $0.queue == "r.delay.16s" }
        #expect(tier?.exchange == "r.delay")
        #expect(tier?.arguments == ["x-match": .string("all"), FleetHeaders.delay: .string("16s")])
        #expect(bindings.contains { $0.queue == "r.results.all" && $0.exchange == "r.results" && $0.routingKey == "#" })
    }

    @Test("definitions() has as many exchanges, queues and bindings as declarations", arguments: [
        FleetTopology(), FleetTopology(prefix: "d", kinds: ["only"], queueType: .quorum, deliveryLimit: 4),
    ])
    func definitions(topology: FleetTopology) throws {
        let (exchanges, queues, bindings) = Self.parts(topology)
        let defs = topology.definitions(vhost: "/test")
        guard case .array(let e)? = defs["exchanges"], case .array(let q)? = defs["queues"],
            case .array(let b)? = defs["bindings"]
        else {
            Issue.record("definitions lack exchanges/queues/bindings arrays: \(defs.jsonString)")
            return
        }
        #expect(e.count == exchanges.count)
        #expect(q.count == queues.count)
        #expect(b.count == bindings.count)
        #expect(e.allSatisfy { $0["vhost"] == "/test" })
        #expect(Set(q.compactMap { $0["name"]?.stringValue }) == Set(queues.map(\.name)))
        // The JSON keeps the argument types: the delivery limit stays an integer.
        if topology.queueType == .quorum {
            let job = q.first { $0["name"]?.stringValue == topology.queue(forKind: topology.kinds[0]) }
            #expect(job?["arguments"]?["x-delivery-limit"] == .int(Int64(topology.deliveryLimit)))
            #expect(job?["arguments"]?["x-queue-type"] == "quorum")
        }
        // And it is valid JSON text.
        #expect(try JSONValue(parsing: defs.prettyPrinted()) == defs)
    }
}
