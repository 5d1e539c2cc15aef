import AMQPClient
import CRabbitMQ
import Foundation

/// The raw broker pipe, the ceiling a worker is measured against: one thread, rabbitmq-c directly, no
/// Swift concurrency, no parsing. It consumes jobs with manual acks (prefetch as given), publishes a
/// persistent result with a publisher confirm for each, and acks each job once its result is confirmed.
struct RawPipe {
    struct Failure: Error, CustomStringConvertible { var description: String }

    let host: String
    let port: Int
    let vhost: String
    let user: String
    let password: String
    let queue: String
    let resultsExchange: String
    let prefetch: UInt16
    /// Bytes of filler in each result's `output` (0: `null`), to move results of a worker's result size.
    let outputBytes: Int

    /// The pipe on the broker of `amqp` (plain TCP; the bench measures the broker, not TLS).
    init(_ amqp: AMQPConfiguration, queue: String, resultsExchange: String, prefetch: UInt16, outputBytes: Int = 0) {
        host = amqp.host
        port = amqp.port
        vhost = amqp.virtualHost
        user = amqp.user
        password = amqp.password
        self.queue = queue
        self.resultsExchange = resultsExchange
        self.prefetch = prefetch
        self.outputBytes = outputBytes
    }

    /// Runs on a dedicated thread until `count` jobs are acked; returns the CPU seconds that thread used.
    @discardableResult
    func run(count: Int) async throws -> Double {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Double, any Error>) in
            let thread = Thread {
                do {
                    let start = Self.threadCPUSeconds()
                    try self.loop(count: count)
                    continuation.resume(returning: Self.threadCPUSeconds() - start)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.name = "fleet.bench.rawpipe"
            thread.start()
        }
    }

    private static func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    private func loop(count: Int) throws {
        guard let conn = amqp_new_connection(), let socket = amqp_tcp_socket_new(conn) else {
            throw Failure(description: "raw pipe: cannot create a connection")
        }
        defer { amqp_destroy_connection(conn) }
        guard amqp_socket_open(socket, host, Int32(port)) == AMQP_STATUS_OK.rawValue else {
            throw Failure(description: "raw pipe: cannot connect to \(host):\(port)")
        }
        defer { _ = amqp_connection_close(conn, Int32(AMQP_REPLY_SUCCESS)) }
        let login = fleet_amqp_login(conn, vhost, 0, 131072, 0, "fleet bench raw pipe", user, password)
        guard login.reply_type == AMQP_RESPONSE_NORMAL else { throw Failure(description: "raw pipe: login failed") }
        _ = amqp_channel_open(conn, 1)
        _ = amqp_confirm_select(conn, 1)
        _ = amqp_basic_qos(conn, 1, 0, prefetch, 0)
        _ = amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), fleet_amqp_empty_bytes(), 0, 0, 0, fleet_amqp_empty_table())
        guard amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL else {
            throw Failure(description: "raw pipe: cannot consume \(queue)")
        }
        var seq: UInt64 = 0
        var firstPending: UInt64 = 1
        var tags: [UInt64] = []  // delivery tag of result seq (firstPending + index)
        var acked = 0
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        let routingKey = "raw.succeeded"
        let contentType = "application/json"
        let output = outputBytes > 0 ? "{\"filler\":\"" + String(repeating: "x", count: outputBytes) + "\"}" : "null"
        while acked < count {
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame_noblock(conn, &frame, &timeout)
            guard status == AMQP_STATUS_OK.rawValue else {
                throw Failure(description: "raw pipe: no frame for 30 s (\(acked) of \(count) done)")
            }
            guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { continue }
            switch frame.payload.method.id {
            case fleet_basic_deliver_method:
                let deliver = frame.payload.method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
                var message = amqp_message_t()
                guard amqp_read_message(conn, 1, &message, 0).reply_type == AMQP_RESPONSE_NORMAL else {
                    throw Failure(description: "raw pipe: read failed")
                }
                let messageID = message.properties.message_id
                // A result of the same shape and size as the runtime's.
                let body = "{\"job_id\":\"\(String(decoding: UnsafeRawBufferPointer(start: messageID.bytes, count: messageID.len), as: UTF8.self))\",\"kind\":\"raw\",\"status\":\"succeeded\",\"attempt\":1,\"worker\":\"bench\",\"timings\":{\"received_at\":\"2026-01-01T00:00:00.000Z\",\"started_at\":\"2026-01-01T00:00:00.000Z\",\"finished_at\":\"2026-01-01T00:00:00.000Z\",\"run_ms\":0.001},\"output\":\(output),\"error\":null}"
                var properties = amqp_basic_properties_t()
                properties._flags = fleet_flag_content_type | fleet_flag_delivery_mode | fleet_flag_message_id
                properties.delivery_mode = 2
                let published = contentType.withCString { ct in
                    routingKey.withCString { rk in
                        resultsExchange.withCString { ex in
                            body.withCString { b in
                                properties.content_type = amqp_cstring_bytes(ct)
                                properties.message_id = messageID
                                return amqp_basic_publish(conn, 1, amqp_cstring_bytes(ex), amqp_cstring_bytes(rk), 0, 0,
                                                          &properties, amqp_cstring_bytes(b))
                            }
                        }
                    }
                }
                amqp_destroy_message(&message)
                guard published == AMQP_STATUS_OK.rawValue else { throw Failure(description: "raw pipe: publish failed") }
                seq += 1
                tags.append(deliver.delivery_tag)
            case fleet_basic_ack_method:
                let ack = frame.payload.method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                let upTo = ack.multiple != 0 ? ack.delivery_tag : ack.delivery_tag
                let from = ack.multiple != 0 ? firstPending : ack.delivery_tag
                if upTo >= from {
                    for s in from...upTo {
                        let index = Int(s - firstPending)
                        guard index >= 0, index < tags.count, tags[index] != 0 else { continue }
                        _ = amqp_basic_ack(conn, 1, tags[index], 0)
                        tags[index] = 0
                        acked += 1
                    }
                }
                var drop = 0
                while drop < tags.count && tags[drop] == 0 { drop += 1 }
                if drop > 1024 || drop == tags.count {
                    tags.removeFirst(drop)
                    firstPending += UInt64(drop)
                }
            default:
                break
            }
            amqp_maybe_release_buffers(conn)
        }
    }
}
