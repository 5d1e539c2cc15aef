import FleetCore
import Foundation
import Testing

@Suite("JobEnvelope.decode")
struct JobEnvelopeTests {
    @Test("the minimal job")
    func minimal() throws {
        let job = try JobEnvelope.decode(Array(#"{"id":"j1","kind":"noop"}"#.utf8))
        #expect(job.id == "j1")
        #expect(job.kind == "noop")
        #expect(job.createdAt == nil)
        #expect(job.notBefore == nil)
        #expect(job.deadline == nil)
        #expect(job.fields.isEmpty)
        #expect(job.data == .null)
    }

    @Test("every optional field; the other top-level fields are kept for the kind")
    func allFields() throws {
        let body = """
            {"id":"bf-2026:prof-8d3f2a:email","kind":"email","created_at":"2026-11-23T10:00:00Z",
             "not_before":"2026-11-23T11:00:00.250+01:00","deadline":"2026-11-23T04:30:00-05:30",
             "profile_id":"prof-8d3f2a","template":"black-friday-2026",
             "campaign":{"id":"bf-2026","name":"Black Friday"},
             "data":{"locale":"en-GB","n":[1,2.5]},"unknown_field":{"ignored":true}}
            """
        let job = try JobEnvelope.decode(Array(body.utf8))
        #expect(job.id == "bf-2026:prof-8d3f2a:email")
        #expect(job.kind == "email")
        #expect(job.createdAt == Date(timeIntervalSince1970: 1_795_428_000))
        #expect(job.notBefore == Date(timeIntervalSince1970: 1_795_428_000.25))
        #expect(job.deadline == Date(timeIntervalSince1970: 1_795_428_000))
        #expect(job.fields["profile_id"] == "prof-8d3f2a")
        #expect(job.fields["template"] == "black-friday-2026")
        #expect(job.fields["campaign"] == ["id": "bf-2026", "name": "Black Friday"])
        #expect(job.fields["unknown_field"] == ["ignored": true])
        #expect(job.fields.count == 4)
        #expect(job.data == ["locale": "en-GB", "n": [1, 2.5]])
    }

    @Test("null optional fields are absent")
    func nullFields() throws {
        let body = #"{"id":"j1","kind":"noop","created_at":null,"not_before":null,"deadline":null,"data":null}"#
        let job = try JobEnvelope.decode(Array(body.utf8))
        #expect(job == JobEnvelope(id: "j1", kind: "noop"))
    }

    @Test("encoded() decodes to the same job")
    func encodeRoundTrip() throws {
        let job = JobEnvelope(
            id: "j-\u{e9}-1", kind: "content", createdAt: Date(timeIntervalSince1970: 1_795_428_000.5),
            notBefore: Date(timeIntervalSince1970: 1_795_428_060), deadline: Date(timeIntervalSince1970: 1_795_431_600.125),
            data: ["x": [1, "y", nil]], fields: ["profile_id": "p1", "template": "t1", "campaign": "c1"])
        let decoded = try JobEnvelope.decode(job.encoded())
        #expect(decoded == job)
    }

    @Test("malformed JSON is malformed_json", arguments: [
        "{", "", #"{"id":"j1","kind":"noop"} x"#, #"{"id":"j1",}"#, "not json", #"{"id":"j1","kind":"noop""#,
        String(repeating: "[", count: 200) + String(repeating: "]", count: 200),
    ])
    func malformedJSON(body: String) throws {
        let error = try #require(TestSupport.jobError(body))
        #expect(error.code == JobError.malformedJSON)
        #expect(error.code == "malformed_json")
        #expect(!error.retryable)
    }

    @Test("invalid UTF-8 is invalid_utf8 with the byte offset", arguments: [
        [0xC0, 0xAF] as [UInt8], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xFF],
    ])
    func invalidUTF8(bad: [UInt8]) throws {
        let body = Array(#"{"id":"j"#.utf8) + bad + Array(#"","kind":"noop"}"#.utf8)
        let error = try #require(TestSupport.jobError(body))
        #expect(error.code == "invalid_utf8")
        #expect(error.message.contains("8"), "\(error.message)")
        #expect(!error.retryable)
    }

    @Test("a wrong type or value of a known field is invalid_envelope naming the field", arguments: [
        ("[]", "object"),
        (#""a string""#, "object"),
        ("42", "object"),
        (#"{"id":5,"kind":"noop"}"#, "'id'"),
        (#"{"id":true,"kind":"noop"}"#, "'id'"),
        (#"{"id":{"x":1},"kind":"noop"}"#, "'id'"),
        (#"{"id":"","kind":"noop"}"#, "'id'"),
        (#"{"id":"j1","kind":5}"#, "'kind'"),
        (#"{"id":"j1","kind":["noop"]}"#, "'kind'"),
        (#"{"id":"j1","kind":"noop","created_at":"yesterday"}"#, "'created_at'"),
        (#"{"id":"j1","kind":"noop","created_at":1795428000}"#, "'created_at'"),
        (#"{"id":"j1","kind":"noop","not_before":"2026-02-30T10:00:00Z"}"#, "'not_before'"),
        (#"{"id":"j1","kind":"noop","deadline":"2026-11-23T10:00:00"}"#, "'deadline'"),
    ])
    func invalidEnvelope(body: String, field: String) throws {
        let error = try #require(TestSupport.jobError(body), "\(body) was accepted")
        #expect(error.code == "invalid_envelope")
        #expect(error.message.contains(field), "\(error.message)")
        #expect(!error.retryable)
    }

    @Test("a key twice in one object, at any depth, is invalid_envelope (I-JSON)", arguments: [
        #"{"id":"a","kind":"noop","id":"b"}"#,
        #"{"id":"a","kind":"noop","kind":"noop"}"#,
        #"{"id":"a","kind":"noop","data":{"x":1,"y":2,"x":3}}"#,
        #"{"id":"a","kind":"noop","data":[{"k":1},{"k":1,"k":1}]}"#,
    ])
    func duplicateKeys(body: String) throws {
        let error = try #require(TestSupport.jobError(body), "\(body) was accepted")
        #expect(error.code == "invalid_envelope")
        #expect(error.message.contains("appears twice"), "\(error.message)")
    }

    @Test("duplicate detection stays linear: an object of 20,000 keys parses, and a late duplicate is found")
    func manyKeys() throws {
        var text = #"{"id":"j","kind":"noop","data":{"#
        text += (0..<20_000).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        let valid = text + "}}"
        #expect(try JobEnvelope.decode(Array(valid.utf8)).data.objectValue?.count == 20_000)
        let duplicated = text + #","k19999":0}}"#
        #expect(TestSupport.jobError(duplicated)?.code == "invalid_envelope")
    }

    @Test("an id with control characters is invalid_envelope", arguments: [
        "m17\u{0}x", "tab\there", "line\nfeed", "del\u{7F}", "c1\u{85}",
    ])
    func controlCharactersInID(id: String) throws {
        let body = JSONValue.object(JSONObject(["id": .string(id), "kind": "noop"])).serialized()
        let error = try #require(TestSupport.jobError(body))
        #expect(error.code == "invalid_envelope")
        #expect(error.message.contains("control characters"))
        #expect(JobEnvelope.usableID(in: try JSONValue(parsing: body)) == nil)
    }

    @Test("content_type: absent or application/json (charset utf-8 allowed); anything else is unsupported_content_type")
    func contentType() throws {
        for ok in [nil, "", "application/json", "Application/JSON", "application/json; charset=utf-8", "application/json;charset=\"UTF-8\""] {
            #expect(throws: Never.self, "\(ok ?? "nil")") { try JobEnvelope.checkContentType(ok) }
        }
        for bad in ["application/x-msgpack", "text/plain", "application/json; charset=latin1", "application/jsonx"] {
            #expect(throws: JobError.self, "\(bad)") { try JobEnvelope.checkContentType(bad) }
            do { try JobEnvelope.checkContentType(bad) } catch { #expect(error.code == "unsupported_content_type") }
        }
    }

    @Test("usableID: the body's id when it is a usable one, even if another field is wrong")
    func usableID() throws {
        #expect(JobEnvelope.usableID(in: try JSONValue(parsing: #"{"id":"ok","kind":"Bad Kind"}"#)) == "ok")
        #expect(JobEnvelope.usableID(in: try JSONValue(parsing: #"{"id":7,"kind":"noop"}"#)) == nil)
        #expect(JobEnvelope.usableID(in: try JSONValue(parsing: #"{"id":"","kind":"noop"}"#)) == nil)
        #expect(JobEnvelope.usableID(in: try JSONValue(parsing: "[1]")) == nil)
    }

    @Test("no id is missing_id", arguments: [#"{"kind":"noop"}"#, #"{"id":null,"kind":"noop"}"#, "{}", #"{"ID":"j1","kind":"noop"}"#])
    func missingID(body: String) throws {
        let error = try #require(TestSupport.jobError(body))
        #expect(error.code == "missing_id")
        #expect(!error.retryable)
    }

    @Test("a missing or invalid kind is unknown_kind", arguments: [
        #"{"id":"j1"}"#,
        #"{"id":"j1","kind":null}"#,
        #"{"id":"j1","kind":""}"#,
        #"{"id":"j1","kind":"Email"}"#,
        #"{"id":"j1","kind":"email.render"}"#,
        #"{"id":"j1","kind":"9lives"}"#,
        #"{"id":"j1","kind":"a b"}"#,
        "{\"id\":\"j1\",\"kind\":\"" + String(repeating: "k", count: 65) + "\"}",
    ])
    func unknownKind(body: String) throws {
        let error = try #require(TestSupport.jobError(body))
        #expect(error.code == "unknown_kind")
        #expect(error.message.contains("kind"))
        #expect(!error.retryable)
    }

    @Test("a body over the limit is body_too_large; at the limit it is decoded")
    func bodyTooLarge() throws {
        let body = Array(#"{"id":"j1","kind":"noop","data":"xxxxxxxxxx"}"#.utf8)
        #expect(TestSupport.jobError(body, maxBytes: body.count) == nil)
        let error = try #require(TestSupport.jobError(body, maxBytes: body.count - 1))
        #expect(error.code == "body_too_large")
        #expect(!error.retryable)
        // The default limit is 1 MiB, checked before parsing (the big body is not even JSON).
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: (1 << 20) + 1)
        let bigError = try #require(TestSupport.jobError(big))
        #expect(bigError.code == "body_too_large")
        #expect(bigError.message.contains("1048576"))
        let atLimit = Array(#"{"id":"j1","kind":"noop","data":""#.utf8)
        let padded = atLimit + [UInt8](repeating: UInt8(ascii: "y"), count: (1 << 20) - atLimit.count - 2) + Array(#""}"#.utf8)
        #expect(padded.count == 1 << 20)
        #expect(TestSupport.jobError(padded) == nil)
    }

    @Test("id length limit: 200 bytes of UTF-8", arguments: [
        (String(repeating: "a", count: 200), true),
        (String(repeating: "a", count: 201), false),
        (String(repeating: "\u{e9}", count: 100), true),  // 200 bytes, 100 characters
        (String(repeating: "\u{e9}", count: 101), false),  // 202 bytes, 101 characters
        (String(repeating: "\u{1F600}", count: 50), true),  // 200 bytes, 50 characters
        (String(repeating: "\u{1F600}", count: 51), false),  // 204 bytes, 51 characters
        ("x", true),
    ])
    func idLength(id: String, valid: Bool) throws {
        let body = JSONValue.object(JSONObject(["id": .string(id), "kind": "noop"])).serialized()
        let error = TestSupport.jobError(body)
        if valid {
            #expect(error == nil, "\(id.utf8.count) bytes rejected: \(String(describing: error))")
            #expect(try JobEnvelope.decode(body).id == id)
        } else {
            #expect(error?.code == "invalid_envelope", "\(id.utf8.count) bytes")
            #expect(error?.message.contains("'id'") == true)
        }
    }

    @Test("a kind's top-level parameters are not the envelope's: any value is kept for the kind to check")
    func kindFields() throws {
        let job = try JobEnvelope.decode(Array(#"{"id":"j1","kind":"noop","campaign":1.5,"profile_id":12}"#.utf8))
        #expect(job.fields["campaign"] == 1.5)
        #expect(job.fields["profile_id"] == 12)
    }

    @Test("decode of a parsed value: non-objects are invalid_envelope")
    func decodeValue() throws {
        #expect(try JobEnvelope.decode(["id": "a", "kind": "crm"] as JSONValue).kind == "crm")
        for value: JSONValue in [nil, 1, "x", [], true] {
            do {
                _ = try JobEnvelope.decode(value)
                Issue.record("\(value) was accepted")
            } catch {
                #expect(error.code == "invalid_envelope")
                #expect(error.message.contains(value.typeName))
            }
        }
    }
}

@Suite("JobEnvelope.isValidKind")
struct KindValidationTests {
    @Test("valid kinds", arguments: [
        "a", "noop", "email", "crm", "a-b_c9", "z0", "k-", "x_", String(repeating: "k", count: 64),
        "a" + String(repeating: "9", count: 63),
    ])
    func valid(kind: String) {
        #expect(JobEnvelope.isValidKind(kind))
    }

    @Test("invalid kinds", arguments: [
        "", "A", "Noop", "9a", "_a", "-a", "email.render", "a b", "a/b", "a.b", "no\u{f6}p", "\u{e9}",
        String(repeating: "k", count: 65), "noop\n", " noop", "a*", "a#",
    ])
    func invalid(kind: String) {
        #expect(!JobEnvelope.isValidKind(kind))
    }
}
