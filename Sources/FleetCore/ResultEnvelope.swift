import Foundation

/// A job's result as published to `fleet.results` with routing key `<kind>.<status>`
/// (Docs/contract/README.md, `result.schema.json`).
public struct ResultEnvelope: Sendable, Hashable {
    /// When the worker received, started and finished the job.
    public struct Timings: Sendable, Hashable {
        public var receivedAt: Date
        public var startedAt: Date
        public var finishedAt: Date
        /// From `created_at` (or the AMQP timestamp) to received, when known; written as whole milliseconds.
        public var queueMilliseconds: Double?

        public init(receivedAt: Date, startedAt: Date, finishedAt: Date, queueMilliseconds: Double? = nil) {
            self.receivedAt = receivedAt
            self.startedAt = startedAt
            self.finishedAt = finishedAt
            self.queueMilliseconds = queueMilliseconds
        }

        public var runMilliseconds: Double { finishedAt.timeIntervalSince(startedAt) * 1000 }
    }

    public var jobID: String
    public var kind: String
    public var status: JobStatus
    public var attempt: Int
    /// `<hostname>:<pid>`.
    public var worker: String
    public var timings: Timings
    public var output: JSONValue
    public var error: JobError?
    /// When a `failed` or `deferred` job runs again.
    public var retryAt: Date?
    public var correlationID: String?

    public init(jobID: String, kind: String, status: JobStatus, attempt: Int, worker: String, timings: Timings,
                output: JSONValue = .null, error: JobError? = nil, retryAt: Date? = nil, correlationID: String? = nil) {
        self.jobID = jobID
        self.kind = kind
        self.status = status
        self.attempt = attempt
        self.worker = worker
        self.timings = timings
        self.output = output
        self.error = error
        self.retryAt = retryAt
        self.correlationID = correlationID
    }

    /// The AMQP routing key on `fleet.results`.
    public var routingKey: String { "\(kind).\(status.rawValue)" }

    /// The AMQP message id: `<job_id>:<attempt>:<status>`; a re-published result keeps it.
    public var messageID: String { "\(jobID):\(attempt):\(status.rawValue)" }

    public var json: JSONValue {
        var o = JSONObject()
        o["job_id"] = .string(jobID)
        o["kind"] = .string(kind)
        o["status"] = .string(status.rawValue)
        o["attempt"] = .int(Int64(attempt))
        o["worker"] = .string(worker)
        var t = JSONObject()
        t["received_at"] = .string(Timestamp.format(timings.receivedAt))
        t["started_at"] = .string(Timestamp.format(timings.startedAt))
        t["finished_at"] = .string(Timestamp.format(timings.finishedAt))
        if let q = timings.queueMilliseconds { t["queue_ms"] = .int(Self.wholeMilliseconds(q)) }
        t["run_ms"] = .int(max(0, Self.wholeMilliseconds(timings.runMilliseconds)))
        o["timings"] = .object(t)
        o["output"] = output
        if let error {
            o["error"] = ["code": .string(error.code), "message": .string(error.message), "retryable": .bool(error.retryable)]
        } else {
            o["error"] = .null
        }
        if let retryAt { o["retry_at"] = .string(Timestamp.format(retryAt)) }
        if let correlationID { o["correlation_id"] = .string(correlationID) }
        return .object(o)
    }

    /// The result as JSON bytes, written directly (the same text as `json.serialized()`).
    public func encoded() -> [UInt8] {
        var w = JSONWriter(capacity: 384)
        w.append("{\"job_id\":")
        w.writeString(jobID)
        w.append(",\"kind\":")
        w.writeString(kind)
        w.append(",\"status\":\"")
        w.append(status.rawValue)
        w.append("\",\"attempt\":")
        w.append(String(attempt))
        w.append(",\"worker\":")
        w.writeString(worker)
        w.append(",\"timings\":{\"received_at\":")
        w.writeTimestamp(timings.receivedAt)
        w.append(",\"started_at\":")
        w.writeTimestamp(timings.startedAt)
        w.append(",\"finished_at\":")
        w.writeTimestamp(timings.finishedAt)
        if let q = timings.queueMilliseconds {
            w.append(",\"queue_ms\":")
            w.append(String(Self.wholeMilliseconds(q)))
        }
        w.append(",\"run_ms\":")
        w.append(String(max(0, Self.wholeMilliseconds(timings.runMilliseconds))))
        w.append("},\"output\":")
        w.write(output)
        if let error {
            w.append(",\"error\":{\"code\":")
            w.writeString(error.code)
            w.append(",\"message\":")
            w.writeString(error.message)
            w.append(error.retryable ? ",\"retryable\":true}" : ",\"retryable\":false}")
        } else {
            w.append(",\"error\":null")
        }
        if let retryAt {
            w.append(",\"retry_at\":")
            w.writeTimestamp(retryAt)
        }
        if let correlationID {
            w.append(",\"correlation_id\":")
            w.writeString(correlationID)
        }
        w.append("}")
        return w.bytes
    }

    /// Milliseconds as the contract's integers (rounded; `queue_ms` may be negative when clocks are skewed).
    private static func wholeMilliseconds(_ v: Double) -> Int64 {
        guard v.isFinite else { return 0 }
        return Int64(max(-9e15, min(9e15, v.rounded())))
    }

    /// Reads a result back (CLI, tests, schedulers written in Swift).
    public static func decode(_ body: [UInt8]) throws -> ResultEnvelope {
        let v = try JSONValue(parsing: body)
        func str(_ value: JSONValue?, _ name: String) throws -> String {
            guard let s = value?.stringValue else { throw JobError.permanent("invalid_result", "'\(name)' must be a string") }
            return s
        }
        func date(_ value: JSONValue?, _ name: String) throws -> Date {
            guard let d = Timestamp.parse(try str(value, name)) else {
                throw JobError.permanent("invalid_result", "'\(name)' is not a timestamp")
            }
            return d
        }
        guard let status = JobStatus(rawValue: try str(v["status"], "status")) else {
            throw JobError.permanent("invalid_result", "unknown status")
        }
        let t = v["timings"]
        var error: JobError?
        if let e = v["error"], case .object = e {
            error = JobError(code: try str(e["code"], "error.code"), message: try str(e["message"], "error.message"),
                             retryable: e["retryable"]?.boolValue ?? false)
        }
        var queueMs: Double?
        switch t?["queue_ms"] {
        case .double(let d): queueMs = d
        case .int(let i): queueMs = Double(i)
        default: queueMs = nil
        }
        return ResultEnvelope(
            jobID: try str(v["job_id"], "job_id"), kind: try str(v["kind"], "kind"), status: status,
            attempt: Int(v["attempt"]?.intValue ?? 0), worker: try str(v["worker"], "worker"),
            timings: Timings(receivedAt: try date(t?["received_at"], "timings.received_at"),
                             startedAt: try date(t?["started_at"], "timings.started_at"),
                             finishedAt: try date(t?["finished_at"], "timings.finished_at"),
                             queueMilliseconds: queueMs),
            output: v["output"] ?? .null, error: error,
            retryAt: v["retry_at"]?.stringValue.flatMap(Timestamp.parse),
            correlationID: v["correlation_id"]?.stringValue)
    }
}
