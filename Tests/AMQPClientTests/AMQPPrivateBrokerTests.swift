import AMQPClient
import FleetTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// AMQPConnection against a private RabbitMQ node of each test's own (started with Ops/scripts/broker.sh):
/// TLS needs a node with a TLS listener, a memory alarm would block every other test on the shared broker,
/// and a restart would disconnect them.
@Suite("AMQPConnection on a private broker: TLS, connection.blocked, restarts", .timeLimit(.minutes(3)))
struct AMQPPrivateBrokerTests {
    // MARK: - TLS

    @Test("amqps: the broker's CA verifies it; the system trust store does not (tlsFailed); verify_none connects")
    func tls() async throws {
        try await PrivateBroker.with(tls: true) { broker in
            let amqpsURL = try broker.value("FLEET_AMQPS_URL")
            let ca = try broker.value("FLEET_BROKER_CA")
            #expect(amqpsURL.hasPrefix("amqps://"))
            #expect(FileManager.default.isReadableFile(atPath: ca), "no CA file at \(ca)")

            // 1. With the CA, peer and host name verified (the URL names 127.0.0.1).
            let verified = try AMQPConfiguration(url: Self.url(amqpsURL, ["cacertfile": ca]))
            #expect(verified.tls?.caCertificatePath == ca)
            #expect(verified.tls?.verifyPeer == true && verified.tls?.verifyHostname == true)
            let connection = try await broker.connect(verified)
            let queue = "amqptest.tls.\(UUID().uuidString.lowercased())"
            try await connection.declare([.queue(.init(name: queue, durable: false))], redeclareOnReconnect: false)
            let body = Array("over TLS \(UUID().uuidString)".utf8)
            #expect(try await connection.publish(body, to: "", routingKey: queue) == .acked)
            let consumer = try await connection.consume(queue: queue, prefetch: 1)
            let collector = Collector(consumer)
            #expect(await collector.wait(for: 1), "nothing consumed over TLS")
            #expect(collector.deliveries.first?.body == body)
            if let delivery = collector.deliveries.first { connection.ack(delivery) }
            await consumer.cancel()
            // The broker agrees that the connection came in on its TLS listener.
            let listing = try await broker.ctl("list_connections", "ssl", "port", "--silent")
            let port = try #require(URLComponents(string: amqpsURL)?.port)
            #expect(listing.split(separator: "\n").contains { $0.split(whereSeparator: \.isWhitespace) == ["true", "\(port)"] },
                    "rabbitmqctl list_connections ssl port:\n\(listing)")

            // 2. Without the CA, the system trust store does not know the throwaway CA.
            let untrusted = try AMQPConfiguration(url: amqpsURL)
            #expect(untrusted.tls?.caCertificatePath == nil)
            do {
                let unexpected = try await AMQPConnection.connect(untrusted)
                await unexpected.close()
                Issue.record("a TLS connection without the broker's CA was accepted")
            } catch let error as AMQPError {
                #expect(error.code == .tlsFailed, "a failed certificate verification gives \(error)")
            }

            // 3. verify_none: no CA needed.
            let unverified = try AMQPConfiguration(url: Self.url(amqpsURL, ["verify": "verify_none"]))
            #expect(unverified.tls?.verifyPeer == false)
            let insecure = try await broker.connect(unverified)
            #expect(try await insecure.publish(Array("verify_none".utf8), to: "", routingKey: queue) == .acked)
            #expect(try await insecure.queueStatus(queue)?.messages == 1)
            try await insecure.delete(queue: queue)
        }
    }

    // MARK: - connection.blocked

    @Test("a memory alarm blocks the connection: .blocked, publishes held; .unblocked releases them, acked and queued")
    func blockedConnection() async throws {
        try await PrivateBroker.with(tls: false) { broker in
            let connection = try await broker.connect(try AMQPConfiguration(url: broker.value("FLEET_AMQP_URL")))
            let log = Log()
            log.follow(connection.events)
            let queue = "amqptest.blocked.\(UUID().uuidString.lowercased())"
            try await connection.declare([.queue(.init(name: queue, durable: false))], redeclareOnReconnect: false)
            #expect(try await connection.publish(Array("before".utf8), to: "", routingKey: queue) == .acked)
            var published = 1

            _ = try await broker.ctl("set_vm_memory_high_watermark", "0")
            let (blocked, triggers) = await Self.publishUntilBlocked(connection, queue: queue, log: log)
            published += triggers.count
            try #require(blocked, "no .blocked event after \(triggers.count) publishes under a memory alarm; events: \(log.entries)")

            // A publish started while blocked is held: no confirm while the alarm lasts.
            let held = Task {
                let confirm = try await connection.publish(Array("held".utf8), to: "", routingKey: queue)
                log.note("held publish confirmed: \(confirm)")
                return confirm
            }
            published += 1
            let completedEarly = await TestEnvironment.eventually(timeout: .seconds(2)) { log.notes.contains { $0.hasPrefix("held") } }
            #expect(!completedEarly, "a publish completed while the connection was blocked")
            #expect(!log.contains(where: { $0 == .unblocked }), "unblocked without the alarm being cleared: \(log.entries)")

            log.note("clearing the alarm")
            _ = try await broker.ctl("set_vm_memory_high_watermark", "0.4")
            let unblocked = await TestEnvironment.eventually(timeout: .seconds(30)) { log.contains { $0 == .unblocked } }
            #expect(unblocked, "no .unblocked event after the alarm was cleared; events: \(log.entries)")
            let confirm = try await Self.value(of: held, timeout: .seconds(30))
            #expect(confirm == .acked, "the held publish ended with \(String(describing: confirm))")
            for (i, trigger) in triggers.enumerated() {
                let result = try await Self.value(of: trigger, timeout: .seconds(30))
                #expect(result == .acked, "publish trigger-\(i) ended with \(String(describing: result))")
            }
            // The order: blocked, then the alarm cleared, then unblocked and the held confirm. (The
            // unblocked event and the confirm reach this test through two different tasks, so their
            // relative order here is not the connection's.)
            let order = log.entries
            let b = order.firstIndex { $0.hasPrefix("event: blocked") }
            let c = order.firstIndex { $0 == "clearing the alarm" }
            let u = order.firstIndex { $0 == "event: unblocked" }
            let h = order.firstIndex { $0.hasPrefix("held publish confirmed") }
            #expect(b != nil && c != nil && u != nil && h != nil && b! < c! && c! < u! && c! < h!, "events: \(order)")
            #expect(!order.contains { $0.hasPrefix("event: disconnected") }, "events: \(order)")

            // Every message is in the queue, the held one included.
            let status = try await connection.queueStatus(queue)
            #expect(status?.messages == UInt32(published), "queue status \(String(describing: status)), published \(published)")
            let consumer = try await connection.consume(queue: queue, prefetch: 100)
            let collector = Collector(consumer)
            _ = await collector.wait(for: published)
            for delivery in collector.deliveries { connection.ack(delivery) }
            let bodies = collector.deliveries.map { String(decoding: $0.body, as: UTF8.self) }
            #expect(bodies.contains("held"), "bodies: \(bodies)")
            #expect(bodies.count == published, "bodies: \(bodies)")
            try await connection.delete(queue: queue)
        }
    }

    // MARK: - Reconnects

    @Test("two nodes in the URL: when the node the connection reached stops, it reconnects to the other within seconds and publishes there")
    func failoverToTheOtherNode() async throws {
        try await PrivateBroker.with { a in
            try await PrivateBroker.with { b in
                let ca = try AMQPConfiguration(url: a.url)
                let cb = try AMQPConfiguration(url: b.url)
                var both = ca
                both.addresses = [ca.addresses[0], cb.addresses[0]]
                both.reconnectInitialDelay = .milliseconds(100)
                both.reconnectMaxDelay = .seconds(1)
                let connection = try await a.connect(both)
                let queue = "amqptest.failover.\(UUID().uuidString.lowercased())"
                try await connection.declare([.queue(.init(name: queue))])  // declared again on every node it reaches
                #expect(try await connection.publish(Array("one".utf8), to: "", routingKey: queue) == .acked)
                // Which node took it: its queue holds the message.
                let probeA = try await a.connect(ca)
                let onA = (try? await probeA.queueStatus(queue))??.messages == 1
                await probeA.close()
                let (first, other) = onA ? (a, b) : (b, a)
                let stopped = ContinuousClock.now
                try await first.run("stop-app")
                let moved = await TestEnvironment.eventually(timeout: .seconds(30)) {
                    (try? await connection.publish(Array("two".utf8), to: "", routingKey: queue)) == .acked
                }
                #expect(moved, "no publish confirmed by the other node within 30 s")
                print("amqp failover: confirmed on the other node \(stopped.duration(to: .now)) after stopping the first")
                let probe = try await other.connect(try AMQPConfiguration(url: other.url))
                #expect((try await probe.queueStatus(queue))?.messages ?? 0 >= 1)
                await probe.close()
                try await first.run("start-app")
            }
        }
    }

    @Test("a broker restart: calls fail .notConnected meanwhile; generation 2 comes back with its declarations and consumer; a stale ack is dropped")
    func reconnectAfterRestart() async throws {
        try await PrivateBroker.with(tls: false) { broker in
            var configuration = try AMQPConfiguration(url: broker.value("FLEET_AMQP_URL"))
            configuration.reconnectInitialDelay = .milliseconds(100)
            configuration.reconnectMaxDelay = .milliseconds(500)
            let connection = try await broker.connect(configuration)
            let log = Log()
            log.follow(connection.events)
            // Not durable: the restart deletes the queue; the connection declares it again.
            let queue = "amqptest.reconnect.\(UUID().uuidString.lowercased())"
            try await connection.declare([.queue(.init(name: queue, durable: false))])
            let consumer = try await connection.consume(queue: queue, prefetch: 10)
            let collector = Collector(consumer)
            #expect(try await connection.publish(Array("before".utf8), to: "", routingKey: queue) == .acked)
            #expect(await collector.wait(for: 1))
            let before = try #require(collector.deliveries.first)
            #expect(before.connectionGeneration == 1)

            try await broker.run("stop-app")
            let lost = await TestEnvironment.eventually(timeout: .seconds(30)) {
                log.contains { if case .disconnected(generation: 1, _) = $0 { true } else { false } }
            }
            try #require(lost, "no .disconnected after stop_app; events: \(log.entries)")
            // Reconnecting: publishes and synchronous calls fail fast.
            do {
                _ = try await connection.publish(Array("while down".utf8), to: "", routingKey: queue)
                Issue.record("a publish succeeded while the broker was stopped")
            } catch let error as AMQPError {
                #expect(error.code == .notConnected, "\(error)")
            }
            do {
                _ = try await connection.queueStatus(queue)
                Issue.record("queueStatus succeeded while the broker was stopped")
            } catch let error as AMQPError {
                #expect(error.code == .notConnected, "\(error)")
            }

            try await broker.run("start-app")
            let back = await TestEnvironment.eventually(timeout: .seconds(60)) { log.contains { $0 == .connected(generation: 2) } }
            try #require(back, "no .connected(generation: 2) after start_app; events: \(log.entries)")
            #expect(connection.generation == 2)
            // Declared again (empty: the unacked message went with the deleted queue); consumed again.
            #expect(try await connection.queueStatus(queue) == AMQPQueueStatus(name: queue, messages: 0, consumers: 1))
            #expect(try await connection.publish(Array("after".utf8), to: "", routingKey: queue) == .acked)
            #expect(await collector.wait(for: 2), "the consumer got nothing after the reconnect")
            let after = try #require(collector.deliveries.dropFirst().first)
            #expect(after.connectionGeneration == 2)
            #expect(after.body == Array("after".utf8))
            // The first connection's delivery has the same tag as this one on the new channel: its ack is
            // dropped, not sent (it would ack "after"). Requeued, "after" comes back redelivered.
            #expect(before.deliveryTag == after.deliveryTag)
            connection.ack(before)
            connection.reject(after, requeue: true)
            #expect(await collector.wait(for: 3), "the requeued message did not come back")
            let again = try #require(collector.deliveries.dropFirst(2).first)
            #expect(again.body == Array("after".utf8) && again.redelivered)
            connection.ack(again)
            #expect(try await connection.publish(Array("last".utf8), to: "", routingKey: queue) == .acked)
            #expect(await collector.wait(for: 4))
            if let last = collector.deliveries.last { connection.ack(last) }
            #expect(connection.generation == 2)
            #expect(log.entries.filter { $0.hasPrefix("event: disconnected") }.count == 1, "events: \(log.entries)")
            await consumer.cancel()
            try await connection.delete(queue: queue)
        }
    }

    @Test("close() of a connection the broker blocked returns at once: the broker reads nothing from it, so no close handshake")
    func closeWhileBlocked() async throws {
        try await PrivateBroker.with(tls: false) { broker in
            var configuration = try AMQPConfiguration(url: broker.value("FLEET_AMQP_URL"))
            configuration.rpcTimeout = .seconds(5)
            let connection = try await broker.connect(configuration)
            let log = Log()
            log.follow(connection.events)
            let queue = "amqptest.blocked-close.\(UUID().uuidString.lowercased())"
            try await connection.declare([.queue(.init(name: queue, durable: false))], redeclareOnReconnect: false)
            _ = try await broker.ctl("set_vm_memory_high_watermark", "0")
            let (blocked, triggers) = await Self.publishUntilBlocked(connection, queue: queue, log: log)
            try #require(blocked, "no .blocked event after \(triggers.count) publishes under a memory alarm; events: \(log.entries)")
            let held = Task { try await connection.publish(Array("held".utf8), to: "", routingKey: queue) }

            let started = ContinuousClock.now
            await connection.close()
            let took = started.duration(to: .now)
            // With the handshake, close waits out the RPC timeout (5 s) twice, 10 s; without it, it returns at once. The
            // bound is one RPC timeout: a loaded CI run once took 3.4 s to close without the handshake.
            #expect(took < .seconds(5), "close() of a blocked connection took \(took)")
            // The held publish fails with .closed, and so do the unconfirmed ones (the publish that got the
            // connection blocked may have been confirmed before).
            for (i, task) in triggers.enumerated() {
                do {
                    let confirm = try await task.value
                    #expect(confirm == .acked, "publish trigger-\(i) ended with \(confirm)")
                } catch let error as AMQPError {
                    #expect(error.code == .closed, "publish trigger-\(i): \(error)")
                }
            }
            do {
                let confirm = try await held.value
                Issue.record("the held publish ended with \(confirm)")
            } catch let error as AMQPError {
                #expect(error.code == .closed, "the held publish: \(error)")
            }

            _ = try await broker.ctl("set_vm_memory_high_watermark", "0.4")
            let cleaner = try await broker.connect(try AMQPConfiguration(url: broker.value("FLEET_AMQP_URL")))
            try await cleaner.delete(queue: queue)
        }
    }

    // MARK: - Helpers

    /// Publishes until the broker blocks the connection (it blocks a connection that publishes during a
    /// resource alarm). Returns whether it did, and the publishes made to get there.
    static func publishUntilBlocked(_ connection: AMQPConnection, queue: String, log: Log) async
        -> (blocked: Bool, triggers: [Task<AMQPPublishConfirm, any Error>])
    {
        var triggers: [Task<AMQPPublishConfirm, any Error>] = []
        let blocked = await TestEnvironment.eventually(timeout: .seconds(30)) {
            if log.contains(where: { if case .blocked = $0 { true } else { false } }) { return true }
            if triggers.count < 30 {
                let body = Array("trigger-\(triggers.count)".utf8)
                triggers.append(Task { try await connection.publish(body, to: "", routingKey: queue) })
            }
            return await TestEnvironment.eventually(timeout: .seconds(1)) {
                log.contains { if case .blocked = $0 { true } else { false } }
            }
        }
        return (blocked, triggers)
    }

    /// `url` with query items added.
    static func url(_ url: String, _ query: KeyValuePairs<String, String>) -> String {
        var components = URLComponents(string: url)!
        components.queryItems = (components.queryItems ?? []) + query.map { URLQueryItem(name: $0.key, value: $0.value) }
        return components.string!
    }

    /// The value of a task, or nil if it has not finished after `timeout`.
    static func value<T: Sendable>(of task: Task<T, any Error>, timeout: Duration) async throws -> T? {
        let box = Mutex<Result<T, any Error>?>(nil)
        let waiter = Task {
            let result = await task.result
            box.withLock { $0 = result }
        }
        _ = await TestEnvironment.eventually(timeout: timeout, every: .milliseconds(20)) { box.withLock { $0 != nil } }
        waiter.cancel()
        return try box.withLock { $0 }?.get()
    }

    /// Connection events and notes of a test, in the order they happened.
    final class Log: Sendable {
        private let state = Mutex<(events: [AMQPConnectionEvent], entries: [String])>(([], []))

        func follow(_ events: AsyncStream<AMQPConnectionEvent>) {
            Task {
                for await event in events {
                    self.state.withLock {
                        $0.events.append(event)
                        $0.entries.append("event: \(event)")
                    }
                }
            }
        }

        func note(_ text: String) { state.withLock { $0.entries.append(text) } }
        func contains(where predicate: (AMQPConnectionEvent) -> Bool) -> Bool { state.withLock { $0.events.contains(where: predicate) } }
        var entries: [String] { state.withLock { $0.entries } }
        var notes: [String] { entries.filter { !$0.hasPrefix("event: ") } }
    }

}
