import FleetCore
import Foundation
import Testing

@Suite("Result encoding")
struct ResultEncodingTests {
    static let base = ResultEnvelope(
        jobID: "j-\u{e9}\"1", kind: "noop", status: .failed, attempt: 2, worker: "host:42",
        timings: .init(receivedAt: Date(timeIntervalSince1970: 1_790_000_000.123),
                       startedAt: Date(timeIntervalSince1970: 1_790_000_000.125),
                       finishedAt: Date(timeIntervalSince1970: 1_790_000_000.5), queueMilliseconds: 12.3456),
        output: ["n": 1, "s": "x\ny"], error: .retryable("smtp_down", "relay said 421"),
        retryAt: Date(timeIntervalSince1970: 1_790_000_010), correlationID: "c-1")

    @Test("the direct encoder writes the same JSON as the value tree", arguments: [
        base,
        ResultEnvelope(jobID: "a", kind: "email", status: .succeeded, attempt: 1, worker: "w",
                       timings: .init(receivedAt: Date(timeIntervalSince1970: 0), startedAt: Date(timeIntervalSince1970: 0),
                                      finishedAt: Date(timeIntervalSince1970: 86_399.999))),
    ])
    func directEqualsTree(_ result: ResultEnvelope) throws {
        #expect(String(decoding: result.encoded(), as: UTF8.self) == result.json.jsonString)
        let decoded = try ResultEnvelope.decode(result.encoded())
        #expect(decoded.jobID == result.jobID)
        #expect(decoded.error == result.error)
        #expect(Timestamp.format(decoded.timings.finishedAt) == Timestamp.format(result.timings.finishedAt))
    }

    @Test("timestamps format as UTC with milliseconds")
    func timestampFormat() {
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_790_000_000.125)) == "2026-09-21T14:13:20.125Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000Z")
    }
}
