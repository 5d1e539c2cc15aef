import FleetCore
import Foundation
import Testing

/// What FleetCore encodes is what Docs/contract/*.schema.json describes, checked with Python's
/// `jsonschema` (draft 2020-12), the validator Ops/scripts/check-contract.py uses.
@Suite("Contract: encoded bodies against the JSON Schemas")
struct ContractSchemaTests {
    /// Validates each file against `<prefix>.schema.json` (prefix = the file name up to the first `-`).
    /// Prints `ok <name>` or `FAIL <name>: <path>: <message>` per file; exits 3 without jsonschema.
    static let validator = #"""
        import json, pathlib, sys
        try:
            from jsonschema import Draft202012Validator
        except ImportError:
            print("jsonschema is missing"); sys.exit(3)
        contract = pathlib.Path(sys.argv[1])
        for name in sys.argv[2:]:
            path = pathlib.Path(name)
            schema = json.loads((contract / (path.name.split("-", 1)[0] + ".schema.json")).read_text("utf-8"))
            Draft202012Validator.check_schema(schema)
            v = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
            errors = sorted(v.iter_errors(json.loads(path.read_text("utf-8"))), key=lambda e: list(e.path))
            if errors:
                for e in errors:
                    print(f"FAIL {path.name}: {e.json_path}: {e.message}")
            else:
                print(f"ok {path.name}")
        """#

    struct Verdicts {
        var valid: Set<String> = []
        var failures: [String: [String]] = [:]
        var output: String
    }

    /// Writes the bodies to temp files and validates them. Fails the test (not skips) when python3 or
    /// jsonschema is missing.
    static func validate(_ files: [String: [UInt8]]) async throws -> Verdicts? {
        guard let python = TestSupport.which("python3") else {
            Issue.record("python3 is not on PATH: the contract tests need python3 with jsonschema (pip install jsonschema)")
            return nil
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-contract-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var paths: [String] = []
        for (name, body) in files.sorted(by: { $0.key < $1.key }) {
            let url = dir.appendingPathComponent(name)
            try Data(body).write(to: url)
            paths.append(url.path)
        }
        let contract = TestSupport.repoRoot.appendingPathComponent("Docs/contract").path
        let result = try await TestSupport.run(python, ["-c", validator, contract] + paths)
        if result.status == 3 {
            Issue.record("""
                The Python package 'jsonschema' is missing, so the encoded bodies cannot be checked against \
                Docs/contract/*.schema.json. Install it: pip install jsonschema (or python3 -m pip install jsonschema)
                """)
            return nil
        }
        guard result.status == 0 else {
            Issue.record("the schema validator failed (exit \(result.status)):\n\(result.output)")
            return nil
        }
        var verdicts = Verdicts(output: result.output)
        for line in result.output.split(separator: "\n") {
            if line.hasPrefix("ok ") {
                verdicts.valid.insert(String(line.dropFirst(3)))
            } else if line.hasPrefix("FAIL ") {
                let rest = line.dropFirst(5)
                let name = String(rest.prefix { $0 != ":" })
                verdicts.failures[name, default: []].append(String(rest))
            }
        }
        return verdicts
    }

    @Test("encoded jobs are valid job.schema.json instances")
    func jobs() async throws {
        let minimal = JobEnvelope(id: "j1", kind: "noop")
        let full = JobEnvelope(
            id: "bf-2026:prof-8d3f2a:email", kind: "email", createdAt: Date(timeIntervalSince1970: 1_795_428_000.250_7),
            notBefore: Date(timeIntervalSince1970: 1_795_428_060), deadline: Date(timeIntervalSince1970: 1_795_514_400),
            data: ["locale": "en-GB", "unicode": "é😀\u{0}"],
            fields: ["profile_id": "prof-8d3f2a", "template": "black-friday-2026", "campaign": ["id": "bf-2026", "name": "BF"]])
        let noop = JobEnvelope(id: "smoke-1", kind: "noop", data: ["noop": ["fail": "retryable", "fail_attempts": 2, "sleep_ms": 10]],
                               fields: ["campaign": "c-1"])
        let old = JobEnvelope(id: String(repeating: "x", count: 200), kind: "crm",
                              createdAt: Date(timeIntervalSince1970: -2_208_988_800), deadline: Date(timeIntervalSince1970: 4_107_542_400.5))
        // A negative control: the validator must reject this one (a kind that is a routing key).
        let bad = JobEnvelope(id: "j2", kind: "email.render")
        let verdicts = try await Self.validate([
            "job-minimal.json": minimal.encoded(), "job-full.json": full.encoded(), "job-noop.json": noop.encoded(),
            "job-edge.json": old.encoded(), "job-control.json": bad.encoded(),
        ])
        guard let verdicts else { return }
        for name in ["job-minimal.json", "job-full.json", "job-noop.json", "job-edge.json"] {
            #expect(verdicts.valid.contains(name), "\(verdicts.failures[name] ?? ["no verdict"])")
        }
        #expect(verdicts.failures["job-control.json"] != nil, "the validator accepted an invalid job:\n\(verdicts.output)")
    }

    @Test("encoded results (succeeded, failed with retry_at, dead, suppressed, deferred) are valid result.schema.json instances")
    func results() async throws {
        var attemptZero = SampleResults.succeeded
        attemptZero.attempt = 0
        let verdicts = try await Self.validate([
            "result-succeeded.json": SampleResults.succeeded.encoded(),
            "result-failed.json": SampleResults.failed.encoded(),
            "result-dead.json": SampleResults.dead.encoded(),
            "result-suppressed.json": SampleResults.suppressed.encoded(),
            "result-deferred.json": SampleResults.deferred.encoded(),
            "result-control.json": attemptZero.encoded(),  // negative control: attempt must be >= 1
        ])
        guard let verdicts else { return }
        for name in ["result-succeeded.json", "result-failed.json", "result-dead.json", "result-suppressed.json", "result-deferred.json"] {
            #expect(verdicts.valid.contains(name), "\((verdicts.failures[name] ?? ["no verdict"]).joined(separator: "\n"))")
        }
        #expect(verdicts.failures["result-control.json"] != nil, "the validator accepted attempt 0:\n\(verdicts.output)")
    }

    /// The same results with whole-millisecond timings (as if the runtime truncated its clock readings).
    /// Separates the schema's other rules from the fractional-milliseconds problem.
    @Test("results with whole-millisecond timings are valid result.schema.json instances")
    func resultsWithWholeMilliseconds() async throws {
        func whole(_ r: ResultEnvelope) -> ResultEnvelope {
            var r = r
            r.timings = .init(receivedAt: Date(timeIntervalSince1970: 1_795_428_000.120),
                              startedAt: Date(timeIntervalSince1970: 1_795_428_000.121),
                              finishedAt: Date(timeIntervalSince1970: 1_795_428_000.348),
                              queueMilliseconds: r.timings.queueMilliseconds.map { $0.rounded() })
            return r
        }
        var files: [String: [UInt8]] = [:]
        for r in SampleResults.all { files["result-\(r.status.rawValue).json"] = whole(r).encoded() }
        let verdicts = try await Self.validate(files)
        guard let verdicts else { return }
        for name in files.keys {
            #expect(verdicts.valid.contains(name), "\((verdicts.failures[name] ?? ["no verdict"]).joined(separator: "\n"))")
        }
    }
}
