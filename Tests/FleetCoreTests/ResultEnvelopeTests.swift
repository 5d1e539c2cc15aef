import FleetCore
import Foundation
import Testing

/// Results as the runtime builds them: `Date()` values, so with sub-millisecond parts.
enum SampleResults {
    static let received = Date(timeIntervalSince1970: 1_795_428_000.120_431)
    static let started = Date(timeIntervalSince1970: 1_795_428_000.121_077)
    static let finished = Date(timeIntervalSince1970: 1_795_428_000.348_912)

    static var timings: ResultEnvelope.Timings {
        .init(receivedAt: received, startedAt: started, finishedAt: finished, queueMilliseconds: 300_120.431)
    }

    static let succeeded = ResultEnvelope(
        jobID: "bf-2026:prof-8d3f2a:email", kind: "email", status: .succeeded, attempt: 1, worker: "worker-7c9f:4711",
        timings: timings, output: ["esp_message_id": "0100018c-5b1e", "subject": "Black Friday: 30% off \u{1F6CD}"],
        correlationID: "sched-batch-20261123-0007")

    static let failed = ResultEnvelope(
        jobID: "job:with:colons", kind: "email", status: .failed, attempt: 2, worker: "host.example:980",
        timings: timings, error: .retryable("template_service_unavailable", "template service returned HTTP 503"),
        retryAt: Date(timeIntervalSince1970: 1_795_428_003.264))

    static let dead = ResultEnvelope(
        jobID: "j-dead", kind: "noop", status: .dead, attempt: 5, worker: "w:1",
        timings: .init(receivedAt: received, startedAt: started, finishedAt: finished),
        error: .permanent(JobError.retriesExhausted, "noop failed as asked"))

    static let suppressed = ResultEnvelope(
        jobID: "j-supp", kind: "crm", status: .suppressed, attempt: 1, worker: "w:2", timings: timings,
        output: ["reason": "opted_out", "detail": ["channel": "email"]])

    static let deferred = ResultEnvelope(
        jobID: "j-def", kind: "push", status: .deferred, attempt: 1, worker: "w:3", timings: timings,
        output: ["reason": "frequency_cap"], retryAt: Date(timeIntervalSince1970: 1_795_458_600))

    static let all = [succeeded, failed, dead, suppressed, deferred]

    static func sample(_ status: JobStatus) -> ResultEnvelope {
        switch status {
        case .succeeded: return succeeded
        case .failed: return failed
        case .dead: return dead
        case .suppressed: return suppressed
        case .deferred: return deferred
        }
    }
}

@Suite("ResultEnvelope")
struct ResultEnvelopeTests {
    @Test("encode then decode gives the same result (timestamps to the millisecond)", arguments: JobStatus.allCases)
    func roundTrip(status: JobStatus) throws {
        let result = SampleResults.sample(status)
        let decoded = try ResultEnvelope.decode(result.encoded())
        #expect(decoded.jobID == result.jobID)
        #expect(decoded.kind == result.kind)
        #expect(decoded.status == result.status)
        #expect(decoded.attempt == result.attempt)
        #expect(decoded.worker == result.worker)
        #expect(decoded.output == result.output)
        #expect(decoded.error == result.error)
        #expect(decoded.correlationID == result.correlationID)
        #expect(decoded.retryAt.map(Timestamp.format) == result.retryAt.map(Timestamp.format))
        #expect((decoded.retryAt == nil) == (result.retryAt == nil))
        #expect(Timestamp.format(decoded.timings.receivedAt) == Timestamp.format(result.timings.receivedAt))
        #expect(Timestamp.format(decoded.timings.startedAt) == Timestamp.format(result.timings.startedAt))
        #expect(Timestamp.format(decoded.timings.finishedAt) == Timestamp.format(result.timings.finishedAt))
        #expect(abs(decoded.timings.receivedAt.timeIntervalSince(result.timings.receivedAt)) < 0.001)
        #expect((decoded.timings.queueMilliseconds == nil) == (result.timings.queueMilliseconds == nil))
        if let q = result.timings.queueMilliseconds, let back = decoded.timings.queueMilliseconds {
            #expect(abs(back - q) < 1, "queue_ms \(back) vs \(q)")
        }
        // Once through the wire format, further round trips change nothing.
        let again = try ResultEnvelope.decode(decoded.encoded())
        #expect(again.encoded() == decoded.encoded())
    }

    @Test("the JSON has the contract's field names and types")
    func fields() throws {
        let v = try JSONValue(parsing: SampleResults.failed.encoded())
        #expect(v["job_id"] == "job:with:colons")
        #expect(v["kind"] == "email")
        #expect(v["status"] == "failed")
        #expect(v["attempt"] == .int(2))
        #expect(v["worker"] == "host.example:980")
        #expect(v["retry_at"] == "2026-11-23T10:00:03.264Z")
        #expect(v["error"] == ["code": "template_service_unavailable", "message": "template service returned HTTP 503", "retryable": true])
        #expect(v["timings"]?["received_at"] == "2026-11-23T10:00:00.120Z")
        #expect(v["timings"]?["started_at"] == "2026-11-23T10:00:00.121Z")
        #expect(v["timings"]?["finished_at"] == "2026-11-23T10:00:00.348Z")
        #expect(v["correlation_id"] == nil)
        let ok = try JSONValue(parsing: SampleResults.succeeded.encoded())
        #expect(ok["error"] == .null)
        #expect(ok["retry_at"] == nil)
        #expect(ok["correlation_id"] == "sched-batch-20261123-0007")
        let dead = try JSONValue(parsing: SampleResults.dead.encoded())
        #expect(dead["timings"]?["queue_ms"] == nil)
        #expect(dead["error"]?["retryable"] == false)
    }

    /// Docs/contract/README.md and result.schema.json: `timings.queue_ms` and `timings.run_ms` are
    /// integers (milliseconds). Consumers with typed integer fields (Go's encoding/json into an int64,
    /// say) cannot read `227.835` or even `227.0`.
    @Test("timings.run_ms and timings.queue_ms are JSON integers, as the contract says", arguments: JobStatus.allCases)
    func integerMilliseconds(status: JobStatus) throws {
        let result = SampleResults.sample(status)
        let timings = try #require(try JSONValue(parsing: result.encoded())["timings"])
        let runMs = try #require(timings["run_ms"])
        guard case .int(let run) = runMs else {
            Issue.record("run_ms is \(runMs.jsonString), not an integer")
            return
        }
        #expect(run == 227 || run == 228, "run_ms \(run)")
        if result.timings.queueMilliseconds != nil {
            let queueMs = try #require(timings["queue_ms"])
            guard case .int = queueMs else {
                Issue.record("queue_ms is \(queueMs.jsonString), not an integer")
                return
            }
        }
    }

    @Test("decode rejects results without the required fields", arguments: [
        "{}",
        #"{"job_id":"j","kind":"noop","status":"bogus","attempt":1,"worker":"w:1","timings":{"received_at":"2026-11-23T10:00:00.000Z","started_at":"2026-11-23T10:00:00.000Z","finished_at":"2026-11-23T10:00:00.000Z"}}"#,
        #"{"job_id":"j","kind":"noop","status":"succeeded","attempt":1,"worker":"w:1","timings":{"received_at":"later","started_at":"2026-11-23T10:00:00.000Z","finished_at":"2026-11-23T10:00:00.000Z"}}"#,
        #"{"job_id":5,"kind":"noop","status":"succeeded","attempt":1,"worker":"w:1","timings":{"received_at":"2026-11-23T10:00:00.000Z","started_at":"2026-11-23T10:00:00.000Z","finished_at":"2026-11-23T10:00:00.000Z"}}"#,
        #"{"job_id":"j","kind":"noop","status":"succeeded","attempt":1,"worker":"w:1"}"#,
        "not json",
    ])
    func decodeRejects(body: String) {
        #expect(throws: (any Error).self) { try ResultEnvelope.decode(Array(body.utf8)) }
    }

    @Test("routingKey is <kind>.<status>", arguments: JobStatus.allCases)
    func routingKey(status: JobStatus) {
        var r = SampleResults.succeeded
        r.status = status
        r.kind = "push"
        #expect(r.routingKey == "push.\(status.rawValue)")
    }

    @Test("messageID is <job_id>:<attempt>:<status>, splittable from the right")
    func messageID() {
        #expect(SampleResults.succeeded.messageID == "bf-2026:prof-8d3f2a:email:1:succeeded")
        #expect(SampleResults.failed.messageID == "job:with:colons:2:failed")
        let parts = SampleResults.failed.messageID.split(separator: ":")
        #expect(parts.suffix(2) == ["2", "failed"])
        #expect(parts.dropLast(2).joined(separator: ":") == "job:with:colons")
    }

    @Test("final statuses: succeeded, suppressed, dead", arguments: [
        (JobStatus.succeeded, true), (.suppressed, true), (.dead, true), (.failed, false), (.deferred, false),
    ])
    func isFinal(status: JobStatus, final: Bool) {
        #expect(status.isFinal == final)
    }

    @Test("there are exactly five statuses")
    func statuses() {
        #expect(Set(JobStatus.allCases.map(\.rawValue)) == ["succeeded", "suppressed", "deferred", "failed", "dead"])
    }
}
