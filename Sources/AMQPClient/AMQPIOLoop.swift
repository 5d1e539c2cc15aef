import CRabbitMQ
import FleetBackoff
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The thread that owns one rabbitmq-c connection.
///
/// rabbitmq-c is not thread-safe, so every C call on the connection happens here. Other threads and tasks
/// hand work over through ``submit(_:)``: a locked mailbox plus an eventfd that wakes the thread from
/// `poll()` on the socket. The thread services deliveries, publisher confirms, returns and heartbeats, and
/// reconnects with capped exponential backoff when the connection dies. No blocking C call ever runs on
/// Swift's cooperative pool.
///
/// Channel 1 carries consumers and confirmed publishes; channel 2 carries synchronous calls (declares,
/// passive declares, purges) so that a failed declare cannot close the data channel.
///
/// The connection's state (connecting, waiting to reconnect, setting up, connected with its control channel,
/// blocked flag and held publishes, stopping, stopped) is one value, ``StateMachine``: its transitions return
/// actions, which this class performs (the C calls, events, logs, continuations).
///
/// `@unchecked Sendable`: other threads touch only the mailbox (behind a `Mutex`), the wake-up eventfd, the
/// first-connect continuation (behind a `Mutex`), the generation (`Atomic`) and immutable configuration.
/// Everything else, the state machine included, is confined to the I/O thread: no lock guards it because
/// only that thread ever reads or writes it (commands reach it through the mailbox).
final class AMQPIOLoop: @unchecked Sendable {
    enum Command {
        case publish(Publish)
        case ack(tag: UInt64, generation: UInt64)
        case reject(tag: UInt64, generation: UInt64, requeue: Bool)
        case perform(@Sendable (AMQPIOLoop) -> Void)
    }

    struct Publish {
        var exchange: String
        var routingKey: String
        var body: [UInt8]
        var properties: AMQPProperties
        var mandatory: Bool
        /// A delivery to ack as soon as the broker confirms this publish (not on a nack).
        var ackOnConfirm: (tag: UInt64, generation: UInt64)?
        var continuation: CheckedContinuation<AMQPPublishConfirm, any Error>
    }

    private struct Mailbox {
        var commands: [Command] = []
        var sleeping = false
        var stopping = false
    }

    private struct PendingPublish {
        var messageID: String?
        var mandatory: Bool
        var ackOnConfirm: (tag: UInt64, generation: UInt64)?
        var returned: (UInt16, String)?
        var continuation: CheckedContinuation<AMQPPublishConfirm, any Error>
    }

    struct Consumer {
        var queue: String
        var tag: String
        var prefetch: UInt16
        var continuation: AsyncStream<[AMQPDelivery]>.Continuation
    }

    let configuration: AMQPConfiguration
    let logger: Logger
    private let mailbox = Mutex(Mailbox())
    private let wakeFD: Int32
    /// The order this connection tries the broker's addresses in (shuffled once), and where the next attempt starts.
    private let addressOrder: [Int]
    private var addressCursor = 0
    private let eventContinuation: AsyncStream<AMQPConnectionEvent>.Continuation
    private let generationBox = Atomic<UInt64>(0)
    private let connectedBox = Atomic<Bool>(false)
    private let firstConnect: Mutex<CheckedContinuation<Void, any Error>?>

    // State below is confined to the I/O thread.
    /// The connection's state: see ``StateMachine``.
    private var machine: StateMachine<amqp_connection_state_t, Publish>
    private var nextPublishSeq: UInt64 = 1
    private var pending: [PendingPublish?] = []
    private var pendingBase: UInt64 = 1
    private var pendingHead = 0
    /// Deliveries not yet settled, and the acks of this pass (sent together at its end).
    private var acks = AMQPAckCoalescer()
    /// Deliveries read in this pass, by consumer tag: each consumer gets them as one batch at its end
    /// (one wake-up of the reading task per pass, not per message).
    private var passDeliveries: [String: [AMQPDelivery]] = [:]
    private var passesSinceRelease = 0
    private(set) var consumers: [String: Consumer] = [:]
    private var declarations: [AMQPDeclaration] = []
    /// basic.return frames whose message's confirm has not arrived yet (see ``returned(_:channel:)``).
    private var returnsAwaitingConfirm: [PendingReturn] = []

    private struct PendingReturn {
        var code: UInt16
        var text: String
        var messageID: String?
        /// The publish sequence number from ``returnIDHeader``, for publishes without a message id.
        var sequence: UInt64?
    }

    /// Added to mandatory publishes that have no message id, so that a basic.return names its publish.
    static let returnIDHeader = "x-amqp-return-seq"
    private var consumerCounter = 0
    private var closeContinuations: [CheckedContinuation<Void, Never>] = []

    init(configuration: AMQPConfiguration, logger: Logger,
         events: AsyncStream<AMQPConnectionEvent>.Continuation,
         retryFirstConnect: Bool, firstConnect: CheckedContinuation<Void, any Error>) {
        self.configuration = configuration
        self.logger = logger
        self.eventContinuation = events
        self.machine = StateMachine(
            retryFirstConnect: retryFirstConnect, reconnectInitialDelay: configuration.reconnectInitialDelay,
            reconnectMaxDelay: configuration.reconnectMaxDelay)
        self.firstConnect = Mutex(firstConnect)
        self.wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        self.addressOrder = Array(configuration.addresses.indices).shuffled()
    }

    deinit { close(wakeFD) }

    /// The generation of the live connection (0 before the first one).
    var currentGeneration: UInt64 { generationBox.load(ordering: .acquiring) }

    /// Whether a connection is up (false while reconnecting and after shutdown).
    var isConnected: Bool { connectedBox.load(ordering: .relaxed) }

    /// Starts the I/O thread.
    func start() {
        let thread = Thread { [self] in
            // Named for `top -H` and profilers (Foundation's name does not reach the kernel here).
            fleet_set_thread_name("fleet.amqp.io")
            self.run()
        }
        thread.name = "fleet.amqp.io"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Hands a command to the I/O thread; wakes it if it sleeps. Returns false after shutdown.
    @discardableResult
    func submit(_ command: Command) -> Bool {
        let wake: Bool? = mailbox.withLock { box in
            if box.stopping { return nil }
            box.commands.append(command)
            let wake = box.sleeping
            box.sleeping = false
            return wake
        }
        guard let wake else { return false }
        if wake { signal() }
        return true
    }

    /// Asks the thread to close the connection and exit; resumes once it did.
    func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let accepted = submit(.perform { loop in
                loop.closeContinuations.append(continuation)
                loop.machine.stopRequested()
            })
            if !accepted { continuation.resume() }
        }
    }

    /// Asks the thread to close the connection and exit, without waiting (a first connect still being
    /// attempted then fails with `.closed`).
    func requestStop() {
        submit(.perform { loop in loop.machine.stopRequested() })
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    private func drainWake() {
        var value: UInt64 = 0
        _ = read(wakeFD, &value, 8)
    }

    // MARK: - The loop

    private func run() {
        while true {
            switch machine.nextLoopAction() {
            case .connect:
                connect()
            case .waitToReconnect(let until):
                waitBeforeReconnect(until: until)
            case .service:
                processCommands()
                // The commands may have stopped the loop or lost the connection.
                guard case .connected(let connected) = machine.state else { continue }
                serviceSocket(connected.connection)
            case .finish(let connection, let handshake, let held):
                finish(closing: connection, handshake: handshake, held: held)
                return
            }
        }
    }

    /// One connect attempt: connected, or the backoff to wait (the first failure is final without
    /// `retryUntilConnected`: the caller gets the error; it decides how to report it).
    private func connect() {
        do {
            try establish()
            resolveFirstConnect(nil)
        } catch {
            var random = SystemRandomNumberGenerator()
            switch machine.connectFailed(now: .now, using: &random) {
            case .failFirstConnect(let connection):
                if let connection { tearDown(connection) }
                resolveFirstConnect(error)
            case .waitToReconnect(let connection, let attempt, let delay, _):
                if let connection { tearDown(connection) }
                logger.warning(
                    "amqp connect failed",
                    metadata: ["amqp.error": "\(error)", "amqp.url": "\(configuration.redactedURL)"])
                logger.info("amqp reconnecting", metadata: ["amqp.attempt": "\(attempt)", "amqp.delay_ms": "\(delay)"])
            }
        }
    }

    private func resolveFirstConnect(_ error: (any Error)?) {
        let continuation = firstConnect.withLock { c -> CheckedContinuation<Void, any Error>? in
            defer { c = nil }
            return c
        }
        if let error { continuation?.resume(throwing: error) } else { continuation?.resume() }
    }

    /// Sleeps until the backoff deadline while still answering commands (publishes fail fast while
    /// disconnected; a stop ends the wait).
    private func waitBeforeReconnect(until deadline: ContinuousClock.Instant) {
        while true {
            processCommands()
            guard case .waitingToReconnect = machine.state else { return }  // stopped
            let left = ContinuousClock.now.duration(to: deadline).milliseconds
            if left <= 0 {
                machine.reconnectDelayElapsed()
                return
            }
            var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            if !prepareToSleep() { continue }
            _ = poll(&fds, 1, Int32(min(left, 1000)))
            wokeUp()
            drainWake()
        }
    }

    /// Marks the loop as sleeping unless commands are waiting. Returns false if it should not sleep.
    private func prepareToSleep() -> Bool {
        mailbox.withLock { box in
            if !box.commands.isEmpty { return false }
            box.sleeping = true
            return true
        }
    }

    private func wokeUp() {
        mailbox.withLock { $0.sleeping = false }
    }

    private func processCommands() {
        while true {
            let commands = mailbox.withLock { box -> [Command] in
                let taken = box.commands
                box.commands.removeAll(keepingCapacity: true)
                return taken
            }
            if commands.isEmpty { return }
            for command in commands {
                switch command {
                case .publish(let publish): doPublish(publish)
                case .ack(let tag, let generation):
                    guard let live = machine.live, generation == live.generation else { continue }
                    ack(tag)
                case .reject(let tag, let generation, let requeue):
                    guard case let (connection, liveGeneration)? = machine.live, generation == liveGeneration else { continue }
                    acks.settled(tag)
                    let status = amqp_basic_reject(connection, 1, tag, requeue ? 1 : 0)
                    if status != AMQP_STATUS_OK.rawValue { connectionFailed("reject failed: \(statusText(status))") }
                case .perform(let body): body(self)
                }
            }
            sendAcks()
        }
    }

    /// Acks a delivery of the live connection: at the end of this pass, coalesced with the others.
    private func ack(_ tag: UInt64) {
        if acks.markAck(tag) { return }
        guard let connection = machine.connection else { return }
        if amqp_basic_ack(connection, 1, tag, 0) != AMQP_STATUS_OK.rawValue {
            connectionFailed("ack failed")  // the broker redelivers; the ledger answers the job again
        }
    }

    /// Sends the acks marked in this pass, as few frames as the order of deliveries allows.
    private func sendAcks() {
        for frame in acks.take() {
            guard let connection = machine.connection else { return }
            if amqp_basic_ack(connection, 1, frame.tag, frame.multiple ? 1 : 0) != AMQP_STATUS_OK.rawValue {
                connectionFailed("ack failed")  // the broker redelivers; the ledger answers the job again
                return
            }
        }
    }

    /// Waits for the socket or the mailbox, then reads every frame that is there.
    private func serviceSocket(_ connection: amqp_connection_state_t) {
        if amqp_frames_enqueued(connection) == 0 && amqp_data_in_buffer(connection) == 0 {
            let fd = amqp_get_sockfd(connection)
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            guard prepareToSleep() else { return }
            let heartbeat = configuration.heartbeatSeconds
            let timeout: Int32 = heartbeat > 0 ? Int32(min(1000, heartbeat * 250)) : 1000
            let ready = poll(&fds, 2, timeout)
            wokeUp()
            if fds[1].revents != 0 { drainWake() }
            // Only the mailbox: go run the commands. On a timeout, read anyway: rabbitmq-c sends and
            // checks heartbeats inside its frame reads.
            if ready > 0 && fds[0].revents == 0 { return }
            if ready == 0 {
                amqp_maybe_release_buffers(connection)  // idle: give the decoding pages back
                passesSinceRelease = 0
            }
        }
        readFrames(limit: 512)
    }

    private func readFrames(limit: Int) {
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        for _ in 0..<limit {
            guard let connection = machine.connection else { return }
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame_noblock(connection, &frame, &zero)
            if status == AMQP_STATUS_TIMEOUT.rawValue { break }
            if status != AMQP_STATUS_OK.rawValue {
                connectionFailed(statusText(status))
                return
            }
            handle(frame)  // then keep reading whatever the kernel has, without blocking
        }
        handOverDeliveries()
        sendAcks()
        // rabbitmq-c decodes frames into pool pages of frame_max bytes (128 KiB) that live until released.
        // Released after every pass, each page came back from mmap with fresh page faults; every 32 passes
        // (and when idle) keeps that rare while memory stays bounded.
        passesSinceRelease += 1
        if passesSinceRelease >= 32, let connection = machine.connection {
            amqp_maybe_release_buffers(connection)
            passesSinceRelease = 0
        }
    }

    // MARK: - Frames

    private func handle(_ frame: amqp_frame_t) {
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return }
        let method = frame.payload.method
        switch method.id {
        case fleet_basic_deliver_method:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            deliverMessage(deliver, channel: frame.channel)
        case fleet_basic_ack_method:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            confirm(tag: ack.delivery_tag, multiple: ack.multiple != 0, acked: true)
        case fleet_basic_nack_method:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            confirm(tag: nack.delivery_tag, multiple: nack.multiple != 0, acked: false)
        case fleet_basic_return_method:
            let ret = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            returned(ret, channel: frame.channel)
        case fleet_basic_cancel_method:
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = cancel.consumer_tag.string
            if let consumer = consumers.removeValue(forKey: tag) {
                // What it was sent before the cancel is still its own (and still to be acked).
                if let batch = passDeliveries.removeValue(forKey: tag) { handOver(batch, to: consumer) }
                logger.warning("amqp consumer cancelled by the broker", metadata: ["amqp.queue": "\(consumer.queue)"])
                consumer.continuation.finish()
                eventContinuation.yield(.consumerCancelled(queue: consumer.queue))
            }
        case fleet_channel_close_method:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            if let connection = machine.connection { _ = fleet_amqp_send_channel_close_ok(connection, frame.channel) }
            let reason = "channel \(frame.channel) closed by the broker: \(close.reply_code) \(close.reply_text.string)"
            if frame.channel == 2 {
                machine.controlChannelClosed()
                logger.warning("amqp control channel closed", metadata: ["amqp.reason": "\(reason)"])
            } else {
                connectionFailed(reason)
            }
        case fleet_connection_close_method:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            if let connection = machine.connection { _ = fleet_amqp_send_connection_close_ok(connection) }
            connectionFailed("connection closed by the broker: \(close.reply_code) \(close.reply_text.string)")
        case fleet_connection_blocked_method:
            let b = method.decoded.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            machine.blocked()
            logger.warning("amqp connection blocked by the broker", metadata: ["amqp.reason": "\(b.reason.string)"])
            eventContinuation.yield(.blocked(reason: b.reason.string))
        case fleet_connection_unblocked_method:
            let waiting = machine.unblocked()
            logger.info("amqp connection unblocked")
            eventContinuation.yield(.unblocked)
            // In the order they were requested, each through doPublish again: if one fails and loses the
            // connection, the rest fail with .notConnected.
            for publish in waiting { doPublish(publish) }
        default:
            break
        }
    }

    private func deliverMessage(_ deliver: amqp_basic_deliver_t, channel: amqp_channel_t) {
        guard case let (connection, generation)? = machine.live else { return }
        let tag = deliver.consumer_tag.string
        let deliveryTag = deliver.delivery_tag
        let redelivered = deliver.redelivered != 0
        let exchange = deliver.exchange.string
        let routingKey = deliver.routing_key.string
        var message = amqp_message_t()
        let reply = amqp_read_message(connection, channel, &message, 0)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            connectionFailed("reading a delivery failed: \(replyText(reply))")
            return
        }
        defer { amqp_destroy_message(&message) }
        guard let consumer = consumers[tag] else {
            // A delivery that raced with a cancel: give it back to the queue for another consumer.
            _ = amqp_basic_reject(connection, channel, deliveryTag, 1)
            return
        }
        let delivery = AMQPDelivery(
            body: message.body.array, properties: AMQPProperties(message.properties), deliveryTag: deliveryTag,
            redelivered: redelivered, exchange: exchange, routingKey: routingKey, consumerTag: tag,
            queue: consumer.queue, connectionGeneration: generation)
        acks.delivered(deliveryTag)
        passDeliveries[tag, default: []].append(delivery)
    }

    /// Hands each consumer the deliveries of this pass, as one batch.
    private func handOverDeliveries() {
        guard !passDeliveries.isEmpty else { return }
        let batches = passDeliveries
        passDeliveries.removeAll(keepingCapacity: true)
        for (tag, batch) in batches {
            handOver(batch, to: consumers[tag])
        }
    }

    private func handOver(_ batch: [AMQPDelivery], to consumer: Consumer?) {
        if let consumer, case .enqueued = consumer.continuation.yield(batch) { return }
        // Nobody reads this consumer any more: hand the messages back instead of holding them unacked.
        guard let connection = machine.connection else { return }
        for delivery in batch {
            acks.settled(delivery.deliveryTag)
            _ = amqp_basic_reject(connection, 1, delivery.deliveryTag, 1)
        }
    }

    private func returned(_ ret: amqp_basic_return_t, channel: amqp_channel_t) {
        guard let connection = machine.connection else { return }
        let code = ret.reply_code
        let text = ret.reply_text.string
        var message = amqp_message_t()
        let reply = amqp_read_message(connection, channel, &message, 0)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            connectionFailed("reading a returned message failed: \(replyText(reply))")
            return
        }
        let properties = AMQPProperties(message.properties)
        amqp_destroy_message(&message)
        // basic.return carries no delivery tag. RabbitMQ handles an unroutable mandatory message in one
        // step: it sends basic.return, then the confirm of that same message, which is the highest tag of
        // the next basic.ack. So the return waits for that ack (message ids are not reliable: absent, or
        // shared by two publishes).
        let sequence = properties.headers[Self.returnIDHeader]?.intValue.map { UInt64(max(0, $0)) }
        returnsAwaitingConfirm.append(PendingReturn(code: code, text: text, messageID: properties.messageID, sequence: sequence))
    }

    /// Gives each waiting return to its publish among the ones confirmed now (indexes first...last):
    /// the unconfirmed mandatory publish with the same message id when there is exactly one (it may be
    /// confirmed later: the return keeps waiting), else the highest confirmed mandatory publish left.
    private func attachReturns(first: Int, last: Int) {
        var waiting: [PendingReturn] = []
        var index = last
        for ret in returnsAwaitingConfirm.reversed() {
            if let sequence = ret.sequence, sequence >= pendingBase {
                let match = Int(sequence - pendingBase)
                if match >= first && match <= last {
                    pending[match]?.returned = (ret.code, ret.text)
                } else if match > last {
                    waiting.insert(ret, at: 0)
                }
                continue
            }
            if let id = ret.messageID {
                let matches = (pendingHead..<pending.count).filter {
                    pending[$0]?.mandatory == true && pending[$0]?.returned == nil && pending[$0]?.messageID == id
                }
                if matches.count == 1, let match = matches.first {
                    if match >= first && match <= last {
                        pending[match]?.returned = (ret.code, ret.text)
                    } else {
                        waiting.insert(ret, at: 0)
                    }
                    continue
                }
            }
            while index >= first && (pending[index]?.mandatory != true || pending[index]?.returned != nil) { index -= 1 }
            if index >= first {
                pending[index]?.returned = (ret.code, ret.text)
                index -= 1
            }
        }
        returnsAwaitingConfirm = waiting
    }

    private func confirm(tag: UInt64, multiple: Bool, acked: Bool) {
        guard tag >= pendingBase else { return }
        let last = Int(tag - pendingBase)
        let first = multiple ? pendingHead : last
        guard last < pending.count else { return }
        if !returnsAwaitingConfirm.isEmpty { attachReturns(first: first, last: last) }
        var confirmedAcks: [UInt64] = []
        let generation = machine.live?.generation
        for index in first...last {
            guard let p = pending[index] else { continue }
            pending[index] = nil
            if acked, let ack = p.ackOnConfirm, ack.generation == generation { confirmedAcks.append(ack.tag) }
            if let (code, text) = p.returned {
                p.continuation.resume(returning: .returned(replyCode: code, replyText: text))
            } else {
                p.continuation.resume(returning: acked ? .acked : .nacked)
            }
        }
        while pendingHead < pending.count && pending[pendingHead] == nil { pendingHead += 1 }
        if pendingHead == pending.count {
            pendingBase += UInt64(pending.count)
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else if pendingHead > 4096 {
            pending.removeFirst(pendingHead)
            pendingBase += UInt64(pendingHead)
            pendingHead = 0
        }
        // Acks that waited only for these confirms (sent at the end of this read pass).
        for tag in confirmedAcks { ack(tag) }
    }

    // MARK: - Publishing

    /// Sends a publish, or has the state machine hold it while the broker blocks the connection.
    private func doPublish(_ publish: Publish) {
        let connection: amqp_connection_state_t
        switch machine.publishRequested(publish) {
        case .send(let live, _):
            connection = live
        case .hold:
            return
        case .failNotConnected:
            publish.continuation.resume(throwing: AMQPError(.notConnected, "no connection to the broker (reconnecting)"))
            return
        }
        let arena = AMQPArena()
        defer { arena.release() }
        var outgoing = publish.properties
        if publish.mandatory && outgoing.messageID == nil {
            // A return echoes the message: this header lets it name its publish exactly.
            outgoing.headers[Self.returnIDHeader] = .int(Int64(nextPublishSeq))
        }
        var properties = arena.properties(outgoing)
        let status = publish.body.withUnsafeBytes { body in
            amqp_basic_publish(
                connection, 1, arena.bytes(publish.exchange), arena.bytes(publish.routingKey),
                publish.mandatory ? 1 : 0, 0, &properties,
                amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            publish.continuation.resume(
                throwing: AMQPError(.connectionLost, "publish failed: \(statusText(status))"))
            connectionFailed("publish failed: \(statusText(status))")
            return
        }
        pending.append(PendingPublish(
            messageID: publish.properties.messageID, mandatory: publish.mandatory,
            ackOnConfirm: publish.ackOnConfirm, returned: nil, continuation: publish.continuation))
        nextPublishSeq += 1
    }

    // MARK: - Connection set-up and loss

    /// Opens a socket to `address` and logs in: the connection state, or an error (the state destroyed).
    private func openAndLogIn(_ address: AMQPConfiguration.Address) throws -> amqp_connection_state_t {
        guard let state = amqp_new_connection() else { throw AMQPError(.connectionFailed, "out of memory") }
        var ok = false
        defer { if !ok { amqp_destroy_connection(state) } }
        let socket: OpaquePointer?
        if let tls = configuration.tls {
            socket = amqp_ssl_socket_new(state)
            guard let socket else { throw AMQPError(.tlsFailed, "could not create a TLS socket") }
            if let ca = tls.caCertificatePath {
                let status = amqp_ssl_socket_set_cacert(socket, ca)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError(.tlsFailed, "cannot load CA certificates from \(ca): \(statusText(status))")
                }
            }
            if let cert = tls.clientCertificatePath, let key = tls.clientKeyPath {
                let status = amqp_ssl_socket_set_key(socket, cert, key)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError(.tlsFailed, "cannot load the client certificate/key: \(statusText(status))")
                }
            }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else { throw AMQPError(.connectionFailed, "could not create a socket") }
        var connectTimeout = timeval(configuration.connectTimeout)
        let openStatus = amqp_socket_open_noblock(socket, address.host, Int32(address.port), &connectTimeout)
        guard openStatus == AMQP_STATUS_OK.rawValue else {
            let code: AMQPError.Code = configuration.tls != nil && openStatus <= AMQP_STATUS_SSL_ERROR.rawValue
                ? .tlsFailed : .connectionFailed
            throw AMQPError(code, "cannot connect to \(address): \(statusText(openStatus))")
        }
        var handshake = timeval(configuration.connectTimeout)
        _ = amqp_set_handshake_timeout(state, &handshake)
        var rpc = timeval(configuration.rpcTimeout)
        _ = amqp_set_rpc_timeout(state, &rpc)
        let login = fleet_amqp_login(
            state, configuration.virtualHost, 0, 131072, Int32(configuration.heartbeatSeconds),
            configuration.connectionName, configuration.user, configuration.password)
        if login.reply_type != AMQP_RESPONSE_NORMAL {
            let failure = error(from: login, context: "login")
            // RabbitMQ refuses bad credentials with connection.close 403 (authentication_failure_close);
            // older brokers just drop the socket.
            if failure.replyCode == 403
                || (login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                    && (login.library_error == AMQP_STATUS_SOCKET_CLOSED.rawValue
                        || login.library_error == AMQP_STATUS_CONNECTION_CLOSED.rawValue)) {
                throw AMQPError(
                    .authenticationFailed,
                    "the broker refused the login for user '\(configuration.user)' on vhost '\(configuration.virtualHost)'",
                    replyCode: failure.replyCode)
            }
            throw failure
        }
        ok = true
        return state
    }

    /// Connects to the first node of ``AMQPConfiguration/addresses`` that takes the connection, in the
    /// connection's shuffled order, starting after the node it last reached (so that a reconnect after losing a
    /// node tries the others first), then opens the channel, confirms, declarations and consumers.
    private func establish() throws {
        let count = configuration.addresses.count
        var lastError: any Error = AMQPError(.connectionFailed, "no broker address")
        var opened: (state: amqp_connection_state_t, address: AMQPConfiguration.Address)?
        for step in 0..<count {
            let address = configuration.addresses[addressOrder[(addressCursor + step) % count]]
            do {
                opened = (try openAndLogIn(address), address)
                addressCursor = (addressCursor + step + 1) % count
                break
            } catch let error as AMQPError where error.code == .authenticationFailed {
                throw error  // every node has the same users: no use trying the others
            } catch {
                lastError = error
                if count > 1 {
                    logger.info("amqp node unreachable; trying the next", metadata: ["amqp.url": "\(configuration.redactedURL(address))", "amqp.error": "\(error)"])
                }
            }
        }
        guard let (state, address) = opened else { throw lastError }
        var ok = false
        defer { if !ok { amqp_destroy_connection(state) } }
        machine.connectionOpened(state)
        ok = true
        // A failure from here on has lost the connection (check() reports it), or else the connect's
        // failure drops it (StateMachine.connectFailed).
        _ = amqp_channel_open(state, 1)
        try check(context: "channel.open")
        _ = amqp_confirm_select(state, 1)
        try check(context: "confirm.select")
        generationBox.store(machine.confirmsSelected(), ordering: .releasing)
        nextPublishSeq = 1
        pendingBase = 1
        pending.removeAll()
        pendingHead = 0
        try declareNow(declarations)
        for (tag, consumer) in consumers.sorted(by: { $0.key < $1.key }) {
            try startConsumer(queue: consumer.queue, tag: tag, prefetch: consumer.prefetch)
        }
        let generation = machine.connectSucceeded()
        logger.info(
            "amqp connected",
            metadata: ["amqp.url": "\(configuration.redactedURL(address))", "amqp.generation": "\(generation)"])
        connectedBox.store(true, ordering: .relaxed)
        eventContinuation.yield(.connected(generation: generation))
    }

    /// Drops the connection: pending confirms fail, consumers stay registered and resume after reconnect.
    func connectionFailed(_ reason: String) {
        guard case .tearDown(let connection, let generation, let reason, let held) = machine.connectionLost(reason: reason) else {
            return
        }
        logger.warning("amqp connection lost", metadata: ["amqp.reason": "\(reason)", "amqp.generation": "\(generation)"])
        eventContinuation.yield(.disconnected(generation: generation, reason: reason))
        tearDown(connection)
        let lost = AMQPError(.connectionLost, "the connection was lost before the broker confirmed: \(reason)")
        failPending(lost, held: held)
    }

    /// Fails the unconfirmed publishes, then the ones held while the connection was blocked.
    private func failPending(_ error: AMQPError, held: [Publish]) {
        returnsAwaitingConfirm.removeAll()
        for index in pendingHead..<pending.count {
            pending[index]?.continuation.resume(throwing: error)
        }
        pending.removeAll()
        pendingHead = 0
        for publish in held { publish.continuation.resume(throwing: error) }
    }

    /// Drops a connection the state machine let go of, and what this pass kept of it.
    private func tearDown(_ connection: amqp_connection_state_t) {
        connectedBox.store(false, ordering: .relaxed)
        // Closing the socket without the AMQP close handshake: the connection is dead anyway.
        amqp_destroy_connection(connection)
        acks.reset()
        passDeliveries.removeAll()  // the broker redelivers them; their acks could not be sent anyway
    }

    /// Ends the thread: closes the connection (if any), fails what waits, ends the consumers and events.
    private func finish(closing connection: amqp_connection_state_t?, handshake: Bool, held: [Publish]) {
        connectedBox.store(false, ordering: .relaxed)
        if let connection {
            if handshake {
                _ = amqp_channel_close(connection, 1, Int32(AMQP_REPLY_SUCCESS))
                _ = amqp_connection_close(connection, Int32(AMQP_REPLY_SUCCESS))
            }
            amqp_destroy_connection(connection)
        }
        failPending(AMQPError(.closed, "the connection was closed"), held: held)
        for consumer in consumers.values { consumer.continuation.finish() }
        consumers.removeAll()
        let leftovers = mailbox.withLock { box -> [Command] in
            box.stopping = true
            defer { box.commands.removeAll() }
            return box.commands
        }
        for command in leftovers {
            switch command {
            case .publish(let p): p.continuation.resume(throwing: AMQPError(.closed, "the connection was closed"))
            case .perform(let body): body(self)
            case .ack, .reject: break
            }
        }
        resolveFirstConnect(AMQPError(.closed, "the connection was closed before it was established"))
        eventContinuation.finish()
        for continuation in closeContinuations { continuation.resume() }
        closeContinuations.removeAll()
        logger.debug("amqp i/o thread stopped")
    }

    // MARK: - Synchronous broker calls (I/O thread only)

    /// The connection for a synchronous call: throws `.notConnected` while reconnecting, `.closed` once a stop
    /// was requested.
    func requireConnection() throws -> amqp_connection_state_t {
        switch machine.synchronousCall {
        case .call(let connection): return connection
        case .failClosed: throw AMQPError(.closed, "the connection was closed")
        case .failNotConnected: throw AMQPError(.notConnected, "no connection to the broker (reconnecting)")
        }
    }

    private func openControlChannel() throws -> amqp_connection_state_t {
        let connection = try requireConnection()
        if !machine.controlChannelOpen {
            _ = amqp_channel_open(connection, 2)
            try check(context: "channel.open", channel: 2)
            machine.controlChannelOpened()
        }
        return connection
    }

    /// Checks the reply of the last synchronous call; on a broker exception answers the close and throws.
    private func check(context: String, channel: amqp_channel_t = 1) throws {
        guard let connection = machine.connection else { throw AMQPError(.notConnected, "\(context): no connection") }
        let reply = amqp_get_rpc_reply(connection)
        if reply.reply_type == AMQP_RESPONSE_NORMAL { return }
        let failure = error(from: reply, context: context)
        if reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && reply.reply.id == fleet_channel_close_method {
            _ = fleet_amqp_send_channel_close_ok(connection, channel)
            if channel == 2 {
                machine.controlChannelClosed()
            } else {
                connectionFailed(failure.message)
            }
        } else if reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && reply.reply.id == fleet_connection_close_method {
            _ = fleet_amqp_send_connection_close_ok(connection)
            connectionFailed(failure.message)
        } else {
            connectionFailed(failure.message)
        }
        throw failure
    }

    private func error(from reply: amqp_rpc_reply_t, context: String) -> AMQPError {
        switch reply.reply_type {
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == fleet_channel_close_method {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                return .fromReply(code: close.reply_code, text: close.reply_text.string, context: context)
            }
            if reply.reply.id == fleet_connection_close_method {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                let error = AMQPError.fromReply(code: close.reply_code, text: close.reply_text.string, context: context)
                if close.reply_code == 403 || close.reply_code == 530 {
                    return AMQPError(close.reply_code == 403 ? .accessRefused : .notFound, error.message, replyCode: close.reply_code)
                }
                return error
            }
            return AMQPError(.protocolError, "\(context): unexpected reply from the broker")
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let code: AMQPError.Code = reply.library_error == AMQP_STATUS_TIMEOUT.rawValue ? .timeout : .connectionLost
            return AMQPError(code, "\(context): \(statusText(reply.library_error))")
        default:
            return AMQPError(.protocolError, "\(context): no reply")
        }
    }

    /// Declares exchanges, queues and bindings now, on the control channel.
    func declareNow(_ items: [AMQPDeclaration]) throws {
        let arena = AMQPArena()
        defer { arena.release() }
        for item in items {
            let connection = try openControlChannel()
            switch item {
            case .exchange(let e):
                _ = amqp_exchange_declare(
                    connection, 2, arena.bytes(e.name), arena.bytes(e.type), 0, e.durable ? 1 : 0,
                    e.autoDelete ? 1 : 0, e.isInternal ? 1 : 0, arena.table(e.arguments))
                try check(context: "declaring exchange \(e.name)", channel: 2)
            case .queue(let q):
                _ = amqp_queue_declare(
                    connection, 2, arena.bytes(q.name), 0, q.durable ? 1 : 0, q.exclusive ? 1 : 0,
                    q.autoDelete ? 1 : 0, arena.table(q.arguments))
                try check(context: "declaring queue \(q.name)", channel: 2)
            case .binding(let b):
                _ = amqp_queue_bind(
                    connection, 2, arena.bytes(b.queue), arena.bytes(b.exchange), arena.bytes(b.routingKey),
                    arena.table(b.arguments))
                try check(context: "binding \(b.queue) to \(b.exchange) with '\(b.routingKey)'", channel: 2)
            }
            arena.release()
        }
    }

    /// Remembers declarations so that they are made again after each reconnect.
    func remember(_ items: [AMQPDeclaration]) {
        for item in items where !declarations.contains(item) { declarations.append(item) }
    }

    func queueStatus(_ name: String) throws -> AMQPQueueStatus? {
        let arena = AMQPArena()
        defer { arena.release() }
        let connection = try openControlChannel()
        let ok = amqp_queue_declare(connection, 2, arena.bytes(name), 1, 0, 0, 0, fleet_amqp_empty_table())
        do {
            try check(context: "queue \(name)", channel: 2)
        } catch let error as AMQPError where error.code == .notFound {
            return nil
        }
        guard let ok else { return nil }
        return AMQPQueueStatus(name: name, messages: ok.pointee.message_count, consumers: ok.pointee.consumer_count)
    }

    func purge(_ name: String) throws -> UInt32 {
        let arena = AMQPArena()
        defer { arena.release() }
        let connection = try openControlChannel()
        let ok = amqp_queue_purge(connection, 2, arena.bytes(name))
        try check(context: "purging \(name)", channel: 2)
        return ok?.pointee.message_count ?? 0
    }

    func deleteQueue(_ name: String) throws {
        let arena = AMQPArena()
        defer { arena.release() }
        let connection = try openControlChannel()
        _ = amqp_queue_delete(connection, 2, arena.bytes(name), 0, 0)
        try check(context: "deleting queue \(name)", channel: 2)
    }

    func deleteExchange(_ name: String) throws {
        let arena = AMQPArena()
        defer { arena.release() }
        let connection = try openControlChannel()
        _ = amqp_exchange_delete(connection, 2, arena.bytes(name), 0)
        try check(context: "deleting exchange \(name)", channel: 2)
    }

    /// Starts consuming `queue` on the data channel and registers the consumer for reconnects.
    func addConsumer(queue: String, prefetch: UInt16, continuation: AsyncStream<[AMQPDelivery]>.Continuation) throws -> String {
        _ = try requireConnection()
        consumerCounter += 1
        let tag = "fleet.\(ProcessInfo.processInfo.processIdentifier).\(consumerCounter).\(queue)"
        try startConsumer(queue: queue, tag: tag, prefetch: prefetch)
        consumers[tag] = Consumer(queue: queue, tag: tag, prefetch: prefetch, continuation: continuation)
        return tag
    }

    private func startConsumer(queue: String, tag: String, prefetch: UInt16) throws {
        let connection = try requireConnection()
        let arena = AMQPArena()
        defer { arena.release() }
        _ = amqp_basic_qos(connection, 1, 0, prefetch, 0)
        try check(context: "basic.qos")
        _ = amqp_basic_consume(connection, 1, arena.bytes(queue), arena.bytes(tag), 0, 0, 0, fleet_amqp_empty_table())
        try check(context: "consuming \(queue)")
    }

    /// Stops consumers: no new deliveries; their stream ends. Deliveries already received stay valid to ack.
    func cancelConsumers(tags: [String]) {
        var streams: [AsyncStream<[AMQPDelivery]>.Continuation] = []
        for tag in tags {
            guard let consumer = consumers.removeValue(forKey: tag) else { continue }
            streams.append(consumer.continuation)
            if let connection = machine.connection {
                let arena = AMQPArena()
                _ = amqp_basic_cancel(connection, 1, arena.bytes(tag))
                arena.release()
                try? check(context: "basic.cancel")
            }
        }
        for stream in streams { stream.finish() }
    }

    // MARK: - Helpers

    private func statusText(_ status: Int32) -> String {
        guard let text = amqp_error_string2(status) else { return "status \(status)" }
        return String(cString: text)
    }

    private func replyText(_ reply: amqp_rpc_reply_t) -> String {
        error(from: reply, context: "read").message
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}


