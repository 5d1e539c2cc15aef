import AMQPClient
import Foundation
import Testing

/// AMQPConnection against a real RabbitMQ (FLEET_TEST_AMQP_URL, started by Ops/scripts/test.sh). Every
/// test declares its own uniquely named queues and exchanges and deletes them at the end.
@Suite("AMQPConnection on a real broker", .timeLimit(.minutes(3)))
struct AMQPConnectionTests {
    /// Bytes of every value, larger than one frame (frame_max is 128 KiB), so the body is split.
    static func body(count: Int, seed: UInt8 = 7) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 8)) }
    }

    /// Reads the AMQPError a throwing call throws, or records an issue.
    static func amqpError(_ what: String, _ body: () async throws -> Void) async -> AMQPError? {
        do {
            try await body()
            Issue.record("\(what) did not throw")
        } catch let error as AMQPError {
            return error
        } catch {
            Issue.record("\(what) threw \(error), not an AMQPError")
        }
        return nil
    }

    // MARK: - Publish, consume, ack

    @Test("a confirmed publish is acked; the consumer gets the same body and every property; ack removes it")
    func publishConsumeAck() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("props")
            let headers: [String: AMQPFieldValue] = [
                "string": .string("héllo wörld 😀"),
                "empty": .string(""),
                "int": .int(-42),
                "int-max": .int(Int64.max),
                "int-min": .int(Int64.min),
                "double": .double(3.25),
                "double-neg": .double(-1.0e-300),
                "true": .bool(true),
                "false": .bool(false),
                "bytes": .bytes([0, 1, 2, 0xFE, 0xFF]),
                "timestamp": .timestamp(1_795_428_000),
                "void": .void,
                "table": .table([
                    "x": .int(1), "y": .string("z"),
                    "nested": .table(["deep": .bool(true), "list": .array([.int(1), .int(2)])]),
                ]),
                "array": .array([.int(1), .string("two"), .double(3.5), .bool(false), .table(["k": .string("v")]),
                                 .array([.string("inner")])]),
                "empty-array": .array([]),
                "empty-table": .table([:]),
            ]
            let properties = AMQPProperties(
                contentType: "application/json", contentEncoding: "identity", headers: headers, deliveryMode: 2,
                priority: 3, correlationID: "corr-\(UUID().uuidString)", replyTo: "amqptest.reply-queue",
                expiration: "600000", messageID: "msg-\(UUID().uuidString)", timestamp: 1_795_428_000, type: "noop",
                appID: "fleet-tests")
            let body = Self.body(count: 300_000)

            #expect(try await s.connection.publish(body, to: "", routingKey: q, properties: properties) == .acked)
            // A second message, never acked, as a control for the ack.
            let control = AMQPProperties(messageID: "control")
            #expect(try await s.connection.publish([1, 2, 3], to: "", routingKey: q, properties: control) == .acked)

            let consumer = try await s.connection.consume(queue: q, prefetch: 10)
            let collector = Collector(consumer)
            #expect(await collector.wait(for: 2))
            let d = try #require(collector.deliveries.first)
            #expect(d.body == body)
            #expect(d.properties.contentType == "application/json")
            #expect(d.properties.contentEncoding == "identity")
            #expect(d.properties.messageID == properties.messageID)
            #expect(d.properties.correlationID == properties.correlationID)
            #expect(d.properties.replyTo == "amqptest.reply-queue")
            #expect(d.properties.type == "noop")
            #expect(d.properties.appID == "fleet-tests")
            #expect(d.properties.timestamp == 1_795_428_000)
            #expect(d.properties.deliveryMode == 2)
            #expect(d.properties.isPersistent)
            #expect(d.properties.priority == 3)
            #expect(d.properties.expiration == "600000")
            for (key, value) in headers {
                #expect(d.properties.headers[key] == value, "header \(key)")
            }
            #expect(d.properties.headers.count == headers.count)
            #expect(d.properties == properties)
            #expect(d.redelivered == false)
            #expect(d.exchange == "")
            #expect(d.routingKey == q)
            #expect(d.queue == q)
            #expect(d.connectionGeneration == s.connection.generation)
            #expect(collector.deliveries.last?.properties == control)
            #expect(collector.deliveries.last?.body == [1, 2, 3])

            s.connection.ack(d)
            await consumer.cancel()
            #expect(await collector.waitForEnd())
            // Closing the connection requeues what was not acked: only the control message is left.
            await s.connection.close()
            let other = try await TestBroker.connect()
            let left = await TestBroker.eventually(timeout: .seconds(30)) {
                (try? await other.queueStatus(q))??.messages == 1
            }
            #expect(left, "expected exactly the unacked control message in \(q)")
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await other.queueStatus(q)?.messages == 1)
            await other.close()
        }
    }

    @Test("a transient message is delivered as transient; an empty body stays empty")
    func transientAndEmpty() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("transient")
            #expect(try await s.connection.publish([], to: "", routingKey: q, properties: AMQPProperties(deliveryMode: 1)) == .acked)
            let consumer = try await s.connection.consume(queue: q, prefetch: 1)
            let collector = Collector(consumer)
            #expect(await collector.wait(for: 1))
            let d = try #require(collector.deliveries.first)
            #expect(d.body.isEmpty)
            #expect(d.properties.deliveryMode == 1)
            #expect(!d.properties.isPersistent)
            // A mandatory publish without a message id carries only the client's return-matching header.
            #expect(Array(d.properties.headers.keys) == ["x-amqp-return-seq"])
            #expect(d.properties.messageID == nil)
            s.connection.ack(d)
            await consumer.cancel()
        }
    }

    // MARK: - Mandatory and returns

    @Test("a mandatory publish nobody is bound for is returned with 312 NO_ROUTE")
    func mandatoryReturned() async throws {
        try await BrokerScratch.with { s in
            let x = try await s.exchange("nobinding")
            let withID = try await s.connection.publish(
                Array("lost".utf8), to: x, routingKey: "nowhere", properties: AMQPProperties(messageID: "m1"), mandatory: true)
            guard case .returned(let code, let text) = withID else {
                Issue.record("expected .returned, got \(withID)")
                return
            }
            #expect(code == 312)
            #expect(text == "NO_ROUTE")
            #expect(!withID.isAcked)
            // Without a message id too.
            let withoutID = try await s.connection.publish(Array("lost".utf8), to: x, routingKey: "nowhere")
            #expect(withoutID.returnedReplyCode == 312)
            // Not mandatory: the broker drops it and confirms it.
            let dropped = try await s.connection.publish(Array("lost".utf8), to: x, routingKey: "nowhere", mandatory: false)
            #expect(dropped == .acked)
            // Once a queue is bound, the same publish is acked.
            let q = try await s.queue("bound")
            try await s.bind(q, to: x, key: "somewhere")
            #expect(try await s.connection.publish(Array("kept".utf8), to: x, routingKey: "somewhere") == .acked)
        }
    }

    /// Publishes `count` messages at once to an exchange where only routing key "ok" is bound; every
    /// third one goes to an unbound key. Returns (index, routable, outcome) per publish.
    static func mixedPublishes(_ s: BrokerScratch, count: Int, withMessageIDs: Bool, persistent: Bool)
        async throws -> (queue: String, outcomes: [(index: Int, routable: Bool, confirm: AMQPPublishConfirm)])
    {
        let x = try await s.exchange("mixed")
        let q = try await s.queue("mixed")
        try await s.bind(q, to: x, key: "ok")
        let connection = s.connection
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool, AMQPPublishConfirm).self) { group in
            for i in 0..<count {
                let routable = i % 3 != 0
                group.addTask {
                    var p = AMQPProperties(deliveryMode: persistent ? 2 : 1)
                    if withMessageIDs { p.messageID = "m-\(i)" }
                    let confirm = try await connection.publish(
                        Self.body(count: 16 + (i * 97) % 3000, seed: UInt8(i % 251)), to: x,
                        routingKey: routable ? "ok" : "nowhere.\(i)", properties: p, mandatory: true)
                    return (i, routable, confirm)
                }
            }
            var all: [(index: Int, routable: Bool, confirm: AMQPPublishConfirm)] = []
            for try await (i, routable, confirm) in group { all.append((i, routable, confirm)) }
            return all.sorted { $0.index < $1.index }
        }
        return (q, outcomes)
    }

    @Test("concurrent publishes where only some are unroutable each get their own outcome (matched by message id)")
    func concurrentMixedOutcomes() async throws {
        try await BrokerScratch.with { s in
            let (q, outcomes) = try await Self.mixedPublishes(s, count: 300, withMessageIDs: true, persistent: true)
            #expect(outcomes.count == 300)
            var wrong: [String] = []
            for o in outcomes {
                let right = o.routable ? o.confirm == .acked : o.confirm.returnedReplyCode == 312
                if !right { wrong.append("#\(o.index) (\(o.routable ? "routable" : "unroutable")): \(o.confirm)") }
            }
            let wrongCount = wrong.count
            #expect(wrongCount == 0, "\(wrongCount) wrong outcomes, e.g. \(wrong.prefix(5))")
            let routable = UInt32(outcomes.filter(\.routable).count)
            let arrived = await TestBroker.eventually { (try? await s.connection.queueStatus(q))??.messages == routable }
            #expect(arrived, "\(q) should hold the \(routable) routable messages")
        }
    }

    /// The client matches a basic.return to its publish by message id, else by "the oldest unconfirmed
    /// mandatory publish". Publishes without a message id are ordinary AMQP usage (the API allows them).
    @Test("concurrent publishes without message ids also each get their own outcome")
    func concurrentMixedOutcomesWithoutMessageIDs() async throws {
        try await BrokerScratch.with { s in
            let (_, outcomes) = try await Self.mixedPublishes(s, count: 300, withMessageIDs: false, persistent: true)
            var wrong: [String] = []
            for o in outcomes {
                let right = o.routable ? o.confirm == .acked : o.confirm.returnedReplyCode == 312
                if !right { wrong.append("#\(o.index) (\(o.routable ? "routable" : "unroutable")): \(o.confirm)") }
            }
            let wrongCount = wrong.count
            #expect(wrongCount == 0, "\(wrongCount) of 300 wrong outcomes, e.g. \(wrong.prefix(5))")
            #expect(outcomes.filter { $0.confirm.returnedReplyCode != nil }.count == 100)
        }
    }

    // MARK: - Broker errors on the control channel

    @Test("re-declaring a queue with other arguments throws .preconditionFailed (406); the connection goes on")
    func preconditionFailed() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("pre")
            let ttl = await Self.amqpError("declare with x-message-ttl") {
                try await s.connection.declare(
                    [.queue(.init(name: q, durable: false, arguments: ["x-message-ttl": .int(1000)]))],
                    redeclareOnReconnect: false)
            }
            #expect(ttl?.code == .preconditionFailed)
            #expect(ttl?.replyCode == 406)
            let durable = await Self.amqpError("declare as durable") {
                try await s.connection.declare([.queue(.init(name: q, durable: true))], redeclareOnReconnect: false)
            }
            #expect(durable?.code == .preconditionFailed)
            #expect(durable?.replyCode == 406)

            // Same connection, no reconnect: declares, publishes and consumes still work.
            #expect(s.connection.generation == 1)
            try await s.connection.declare([.queue(.init(name: q, durable: false))], redeclareOnReconnect: false)
            #expect(try await s.connection.publish(Array("after".utf8), to: "", routingKey: q) == .acked)
            let consumer = try await s.connection.consume(queue: q, prefetch: 1)
            let collector = Collector(consumer)
            #expect(await collector.wait(for: 1))
            #expect(collector.deliveries.first?.body == Array("after".utf8))
            if let d = collector.deliveries.first { s.connection.ack(d) }
            await consumer.cancel()
            #expect(s.connection.generation == 1)
        }
    }

    @Test("queueStatus of a missing queue is nil, and the connection stays usable")
    func queueStatusMissing() async throws {
        try await BrokerScratch.with { s in
            #expect(try await s.connection.queueStatus(TestBroker.uniqueName("missing")) == nil)
            #expect(try await s.connection.queueStatus(TestBroker.uniqueName("missing")) == nil)
            let q = try await s.queue("present")
            #expect(try await s.connection.publish([42], to: "", routingKey: q) == .acked)
            let status = try #require(try await s.connection.queueStatus(q))
            #expect(status.name == q)
            #expect(status.messages == 1)
            #expect(status.consumers == 0)
            #expect(s.connection.generation == 1)
            // Consuming a missing queue fails with .notFound.
            let missing = await Self.amqpError("consume a missing queue") {
                _ = try await s.connection.consume(queue: TestBroker.uniqueName("missing"), prefetch: 1)
            }
            #expect(missing?.code == .notFound)
            #expect(missing?.replyCode == 404)
        }
    }

    // MARK: - Prefetch, reject

    @Test("prefetch is honoured: 5 unacked deliveries at most, more after acks")
    func prefetch() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("prefetch")
            for i in 0..<20 {
                #expect(try await s.connection.publish([UInt8(i)], to: "", routingKey: q) == .acked)
            }
            let consumer = try await s.connection.consume(queue: q, prefetch: 5)
            let collector = Collector(consumer)
            #expect(await collector.wait(for: 5))
            try await Task.sleep(for: .milliseconds(500))
            #expect(collector.count == 5)
            #expect(try await s.connection.queueStatus(q)?.consumers == 1)

            for d in collector.deliveries { s.connection.ack(d) }
            #expect(await collector.wait(for: 10))
            try await Task.sleep(for: .milliseconds(500))
            #expect(collector.count == 10)

            // Each further 5 acks let 5 more in, until all 20 arrived.
            var delivered = 10
            while delivered < 20 {
                for d in collector.deliveries.dropFirst(delivered - 5).prefix(5) { s.connection.ack(d) }
                delivered += 5
                #expect(await collector.wait(for: delivered))
            }
            for d in collector.deliveries.suffix(5) { s.connection.ack(d) }
            #expect(collector.count == 20)
            #expect(collector.deliveries.map { $0.body[0] } == (0..<20).map { UInt8($0) })
            await consumer.cancel()
        }
    }

    @Test("acks in any order, mixed with rejects, settle every delivery without a channel error (coalesced acks)")
    func acksInAnyOrder() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("ack-order")
            let count = 300
            for i in 0..<count {
                #expect(try await s.connection.publish(Array("m\(i)".utf8), to: "", routingKey: q) == .acked)
            }
            let consumer = try await s.connection.consume(queue: q, prefetch: UInt16(count))
            let collector = Collector(consumer)
            #expect(await collector.wait(for: count))
            let deliveries = collector.deliveries
            // Back to front for the first third (each ack behind an open delivery), in order for the
            // second (coalesced), every other one then the rest for the last; every 7th is rejected
            // (requeue false: dropped, the queue has no dead-letter exchange).
            var order = Array(deliveries[0..<100].reversed()) + Array(deliveries[100..<200])
            let last = Array(deliveries[200...])
            order += last.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
            order += last.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
            for (i, delivery) in order.enumerated() {
                if i % 7 == 3 { s.connection.reject(delivery, requeue: false) } else { s.connection.ack(delivery) }
                if i % 25 == 0 { try await Task.sleep(for: .milliseconds(5)) }
            }
            // Nothing came back (an ack of an unknown tag would close the channel and redeliver everything),
            // and the channel still works.
            try await Task.sleep(for: .milliseconds(300))
            #expect(collector.count == count)
            #expect(try await s.connection.publish(Array("after".utf8), to: "", routingKey: q) == .acked)
            #expect(await collector.wait(for: count + 1))
            if let after = collector.deliveries.last { s.connection.ack(after) }
            await consumer.cancel()
            // Settled, not just delivered: once this connection is gone, nothing is back in the queue.
            await s.connection.close()
            let other = try await TestBroker.connect()
            #expect(try await other.queueStatus(q)?.messages == 0)
            await other.close()
        }
    }

    @Test("reject(requeue: true) delivers the message again, marked redelivered")
    func rejectRequeue() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("requeue")
            #expect(try await s.connection.publish(Array("again".utf8), to: "", routingKey: q,
                                                   properties: AMQPProperties(messageID: "r1")) == .acked)
            let consumer = try await s.connection.consume(queue: q, prefetch: 1)
            let collector = Collector(consumer)
            #expect(await collector.wait(for: 1))
            let first = try #require(collector.deliveries.first)
            #expect(!first.redelivered)
            s.connection.reject(first, requeue: true)
            #expect(await collector.wait(for: 2))
            let second = try #require(collector.deliveries.dropFirst().first)
            #expect(second.redelivered)
            #expect(second.body == Array("again".utf8))
            #expect(second.properties.messageID == "r1")
            #expect(second.deliveryTag != first.deliveryTag)
            s.connection.ack(second)
            try await Task.sleep(for: .milliseconds(300))
            #expect(collector.count == 2)
            await consumer.cancel()
        }
    }

    @Test("reject(requeue: false) drops the message when the queue has no dead-letter exchange")
    func rejectDrops() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("drop")
            #expect(try await s.connection.publish(Array("gone".utf8), to: "", routingKey: q) == .acked)
            let consumer = try await s.connection.consume(queue: q, prefetch: 1)
            let collector = Collector(consumer)
            #expect(await collector.wait(for: 1))
            s.connection.reject(try #require(collector.deliveries.first), requeue: false)
            try await Task.sleep(for: .milliseconds(500))
            #expect(collector.count == 1)
            await consumer.cancel()
            // Even after the channel closes nothing comes back (an unacked message would).
            await s.connection.close()
            let other = try await TestBroker.connect()
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await other.queueStatus(q)?.messages == 0)
            await other.close()
        }
    }

    @Test("reject(requeue: false) dead-letters the message to the queue's dead-letter exchange")
    func rejectDeadLetters() async throws {
        try await BrokerScratch.with { s in
            let dlx = try await s.exchange("dlx", type: "fanout")
            let dlq = try await s.queue("dlq")
            try await s.bind(dlq, to: dlx, key: "")
            let q = try await s.queue("with-dlx", arguments: ["x-dead-letter-exchange": .string(dlx)])
            let properties = AMQPProperties(headers: ["app": .string("x")], messageID: "dl-1")
            #expect(try await s.connection.publish(Array("dead".utf8), to: "", routingKey: q, properties: properties) == .acked)
            let consumer = try await s.connection.consume(queue: q, prefetch: 1)
            let collector = Collector(consumer)
            #expect(await collector.wait(for: 1))
            s.connection.reject(try #require(collector.deliveries.first), requeue: false)
            let moved = await TestBroker.eventually { (try? await s.connection.queueStatus(dlq))??.messages == 1 }
            #expect(moved, "the rejected message did not reach the dead-letter queue")
            #expect(try await s.connection.queueStatus(q)?.messages == 0)
            await consumer.cancel()

            let deadConsumer = try await s.connection.consume(queue: dlq, prefetch: 1)
            let dead = Collector(deadConsumer)
            #expect(await dead.wait(for: 1))
            let d = try #require(dead.deliveries.first)
            #expect(d.body == Array("dead".utf8))
            #expect(d.properties.messageID == "dl-1")
            #expect(d.properties.headers["app"] == .string("x"))
            guard case .array(let deaths)? = d.properties.headers["x-death"], case .table(let death)? = deaths.first else {
                Issue.record("no x-death header: \(d.properties.headers)")
                return
            }
            #expect(death["reason"]?.stringValue == "rejected")
            #expect(death["queue"]?.stringValue == q)
            #expect(death["count"]?.intValue == 1)
            s.connection.ack(d)
            await deadConsumer.cancel()
        }
    }

    // MARK: - Pipelining

    @Test("5,000 concurrent confirmed publishes are all acked")
    func manyConcurrentPublishes() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("many")
            let connection = s.connection
            let confirms = try await withThrowingTaskGroup(of: AMQPPublishConfirm.self) { group in
                for i in 0..<5000 {
                    group.addTask {
                        try await connection.publish(Array("message \(i)".utf8), to: "", routingKey: q,
                                                     properties: AMQPProperties(messageID: "p-\(i)"))
                    }
                }
                var all: [AMQPPublishConfirm] = []
                for try await c in group { all.append(c) }
                return all
            }
            #expect(confirms.count == 5000)
            #expect(confirms.allSatisfy { $0 == .acked }, "\(confirms.filter { $0 != .acked }.prefix(5))")
            let all = await TestBroker.eventually { (try? await connection.queueStatus(q))??.messages == 5000 }
            #expect(all, "\(q) should hold 5000 messages")
        }
    }

    // MARK: - Close

    @Test("close() ends consumer streams; later calls throw .closed")
    func close() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("close")
            let consumer = try await s.connection.consume(queue: q, prefetch: 1)
            let collector = Collector(consumer)
            await s.connection.close()
            #expect(await collector.waitForEnd(), "the consumer stream did not end")
            let publish = await Self.amqpError("publish after close") {
                _ = try await s.connection.publish([1], to: "", routingKey: q)
            }
            #expect(publish?.code == .closed)
            let status = await Self.amqpError("queueStatus after close") { _ = try await s.connection.queueStatus(q) }
            #expect(status?.code == .closed)
            let consume = await Self.amqpError("consume after close") { _ = try await s.connection.consume(queue: q, prefetch: 1) }
            #expect(consume?.code == .closed)
            await s.connection.close()  // a second close returns at once
        }
    }

    @Test("publishes in flight when close() is called are acked or fail with .closed; none hangs")
    func closeWithPublishesInFlight() async throws {
        try await BrokerScratch.with { s in
            let q = try await s.queue("inflight")
            let connection = s.connection
            let outcomes = await withTaskGroup(of: String.self) { group in
                for i in 0..<500 {
                    group.addTask {
                        do {
                            let c = try await connection.publish(Array("m\(i)".utf8), to: "", routingKey: q)
                            return c == .acked ? "acked" : "\(c)"
                        } catch let error as AMQPError {
                            return "\(error.code)"
                        } catch {
                            return "other: \(error)"
                        }
                    }
                }
                group.addTask {
                    await connection.close()
                    return "close"
                }
                var all: [String] = []
                for await o in group { all.append(o) }
                return all
            }
            #expect(outcomes.count == 501)
            let unexpected = outcomes.filter { $0 != "acked" && $0 != "closed" && $0 != "close" }
            #expect(unexpected.isEmpty, "\(unexpected.prefix(5))")
        }
    }

    // MARK: - Connect failures

    @Test("connecting to a port nobody listens on throws .connectionFailed")
    func connectClosedPort() async throws {
        let port = try TestBroker.closedPort()
        let configuration = AMQPConfiguration(host: "127.0.0.1", port: port, connectTimeout: .seconds(5))
        let error = await Self.amqpError("connect to 127.0.0.1:\(port)") {
            let c = try await AMQPConnection.connect(configuration)
            await c.close()
        }
        #expect(error?.code == .connectionFailed, "\(String(describing: error))")
    }

    @Test("several addresses, one of them dead: every connection (in its own shuffled order) reaches the live one")
    func addressListSkipsDeadNode() async throws {
        let dead = 1  // nothing listens on port 1
        let live = try TestBroker.configuration
        var configuration = live
        configuration.addresses = [.init(host: "127.0.0.1", port: dead), live.addresses[0]]
        configuration.connectTimeout = .seconds(5)
        for _ in 0..<6 {
            let c = try await AMQPConnection.connect(configuration)
            #expect(c.isConnected)
            let queue = "addr-\(UUID().uuidString.prefix(8))"
            try await c.declare([.queue(.init(name: queue, durable: false, autoDelete: true))])
            #expect(try await c.publish(Array("x".utf8), to: "", routingKey: queue) == .acked)
            await c.close()
        }
        // All dead: the error names the last node tried.
        configuration.addresses = [.init(host: "127.0.0.1", port: dead), .init(host: "127.0.0.1", port: 2)]
        let error = await Self.amqpError("connect to two dead nodes") {
            let c = try await AMQPConnection.connect(configuration)
            await c.close()
        }
        #expect(error?.code == .connectionFailed, "\(String(describing: error))")
    }

    @Test("connect(retryUntilConnected:) keeps trying an unreachable broker; cancelling the caller stops it with .closed")
    func retryUntilConnectedStopsWhenCancelled() async throws {
        // Port 1: nothing listens there (a port found free and closed again can be taken by another test's
        // listener meanwhile, one that never answers, which slows each attempt to the connect timeout).
        let port = 1
        let configuration = AMQPConfiguration(
            host: "127.0.0.1", port: port, connectTimeout: .seconds(5), reconnectInitialDelay: .milliseconds(20),
            reconnectMaxDelay: .milliseconds(200))
        let log = LogCapture()
        let connecting = Task {
            try await AMQPConnection.connect(configuration, retryUntilConnected: true, logger: log.logger)
        }
        // Refused at once each time, then a backoff wait: three rounds show it goes on trying.
        // (A generous bound: when the suite's three-node cluster starts, this machine's two cores are saturated.)
        let retried = await TestBroker.eventually(timeout: .seconds(60)) { log.count("amqp reconnecting") >= 3 }
        #expect(retried, "\(log.count("amqp reconnecting")) reconnect attempts logged")
        let cancelled = ContinuousClock.now
        connecting.cancel()
        let error = await Self.amqpError("a cancelled connect to 127.0.0.1:\(port)") {
            let c = try await connecting.value
            await c.close()
        }
        #expect(error?.code == .closed, "\(String(describing: error))")
        // Not cancelled, the attempts would go on for ever; 30 s tells that apart even when the suite's load tests
        // (a three-node cluster, wrk against fleet serve) saturate both cores (6 s was seen under that load).
        #expect(cancelled.duration(to: .now) < .seconds(30), "the attempts went on after the cancel")
    }

    @Test("a wrong password throws .authenticationFailed")
    func wrongPassword() async throws {
        var configuration = try TestBroker.configuration
        configuration.password = "wrong-\(UUID().uuidString)"
        let error = await Self.amqpError("connect with a wrong password") {
            let c = try await AMQPConnection.connect(configuration)
            await c.close()
        }
        #expect(error?.code == .authenticationFailed, "\(String(describing: error))")
        // And the right password still works afterwards.
        let ok = try await TestBroker.connect()
        #expect(ok.generation == 1)
        await ok.close()
    }

    @Test("an unknown virtual host is refused with .notFound (530), not as a connection or login failure")
    func unknownVirtualHost() async throws {
        var configuration = try TestBroker.configuration
        configuration.virtualHost = "amqptest-no-such-vhost-\(UUID().uuidString.prefix(8))"
        let error = await Self.amqpError("connect to an unknown vhost") {
            let c = try await AMQPConnection.connect(configuration)
            await c.close()
        }
        #expect(error?.code == .notFound, "\(String(describing: error))")
        #expect(error?.replyCode == 530)
    }
}
