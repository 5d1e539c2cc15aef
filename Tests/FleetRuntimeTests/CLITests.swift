import AMQPClient
import FleetAMQP
import FleetCore
import FleetTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Bad arguments and bad input get one clear line and a non-zero exit, never a stack trace.
@Suite("fleet CLI")
struct CLITests {
    @Test("bad arguments: one line on stderr, exit 64", arguments: [
        ["worker", "--concurrency", "0"],
        ["worker", "--kinds", "nosuchkind", "--amqp-url", "amqp://127.0.0.1:1/"],
        ["nosuchcommand"],
        ["enqueue"],
        ["status", "--amqp-url", "http://example.invalid"],
        ["dlq", "list", "--kind", "Bad Kind"],
        ["topology", "apply", "--queue-type", "stream"],
        ["worker", "--ledger-retention", "soon", "--amqp-url", "amqp://127.0.0.1:1/"],
        ["worker", "--driver", "kafka"],
        ["worker", "--driver", "memory"],
        ["serve"],
        ["serve", "--listen", "127.0.0.1:99999"],
        ["bench", "serve", "--seconds", "0"],
    ])
    func badArguments(_ arguments: [String]) async throws {
        let (status, output) = try await FleetProcess.run(arguments)
        #expect(status == 64, "\(output)")
        let lines = output.split(separator: "\n")
        #expect(lines.count == 1, "\(output)")
        #expect(lines.first?.hasPrefix("fleet: ") == true)
    }

    @Test("fleet serve with keys but a bad listen address or public URL: one line, exit 64; campaign report of an unknown campaign: exit 66")
    func serveSettings() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-cli-serve-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for env in [["FLEET_EMAIL_SECRET": "s", "FLEET_SERVE_LISTEN": "nowhere"], ["FLEET_EMAIL_SECRET": "s", "FLEET_PUBLIC_URL": "mail.example.com"],
                    ["FLEET_LINK_KEYS": "k1"]] {
            let (status, output) = try await FleetProcess.run(["serve"], environment: env.merging(["FLEET_STORE": dir + "/s.sqlite"]) { $1 })
            #expect(status == 64, "\(output)")
            #expect(output.split(separator: "\n").count == 1, "\(output)")
        }
        let (status, output) = try await FleetProcess.run(["campaign", "report", "nope"], environment: ["FLEET_STORE": dir + "/s.sqlite"])
        #expect(status == 66, "\(output)")
    }

    @Test("worker --driver memory runs the jobs of a file without a broker, prints their results, and ends")
    func memoryDriver() async throws {
        let dir = try TestBroker.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let jobs = [
            #"{"id":"m1","kind":"noop"}"#, #"{"id":"m2","kind":"noop","data":{"noop":{"fail":"retryable","fail_attempts":1}}}"#,
            "not json", #"{"id":"m3","kind":"email"}"#,
        ].joined(separator: "\n")
        let run = try await FleetProcess.run(
            ["worker", "--driver", "memory", "--jobs", "-", "--store", dir.appendingPathComponent("s.sqlite").path,
             "--log-level", "error"], stdin: Data(jobs.utf8), timeout: .seconds(60))
        #expect(run.status == 0, "\(run.output)")
        let results = run.output.split(separator: "\n").compactMap { try? ResultEnvelope.decode(Array($0.utf8)) }
        #expect(Set(results.filter { $0.status.isFinal }.map(\.jobID)) == ["m1", "m2", "line-3"])
        #expect(results.first { $0.jobID == "line-3" }?.error?.code == "malformed_json")
        #expect(results.contains { $0.jobID == "m2" && $0.status == .failed })
        #expect(run.output.contains("line 4: kind 'email' is not among --kinds"))
    }

    @Test("FLEET_STORE=postgres://: the memory-driver worker records its jobs in the PostgreSQL ledger, and a second process is answered from it; a kind that needs the profile store is one line and exit 64")
    func postgresLedger() async throws {
        let url = try TestEnvironment.postgresURL
        let tag = UUID().uuidString.prefix(8)
        let jobs = [#"{"id":"pg-\#(tag)-1","kind":"noop"}"#, #"{"id":"pg-\#(tag)-2","kind":"noop"}"#].joined(separator: "\n")
        var workers: [String] = []
        for _ in 0..<2 {
            let run = try await FleetProcess.run(["worker", "--driver", "memory", "--jobs", "-", "--log-level", "error"],
                                                 environment: ["FLEET_STORE": url], stdin: Data(jobs.utf8), timeout: .seconds(60))
            #expect(run.status == 0, "\(run.output)")
            let results = run.output.split(separator: "\n").compactMap { try? ResultEnvelope.decode(Array($0.utf8)) }
            #expect(Set(results.map(\.jobID)) == ["pg-\(tag)-1", "pg-\(tag)-2"] && results.allSatisfy { $0.status == .succeeded })
            workers.append(results.first?.worker ?? "")
        }
        #expect(!workers[0].isEmpty && workers[0] == workers[1], "the second process answers with the first one's results: \(workers)")
        let refused = try await FleetProcess.run(["worker", "--kinds", "push"], environment: ["FLEET_STORE": url], timeout: .seconds(30))
        #expect(refused.status == 64 && refused.output.split(separator: "\n").count == 1, "\(refused.output)")
        #expect(refused.output.contains("profile store") && !refused.output.contains("postgres://"))
        let bad = try await FleetProcess.run(["worker", "--kinds", "noop"], environment: ["FLEET_STORE": "postgres://127.0.0.1/x"], timeout: .seconds(30))
        #expect(bad.status == 64 && bad.output.contains("no user name"), "\(bad.output)")
        // Commands on the profile store's other tables refuse it in one line, without the URL (it may hold a password).
        let other = try await FleetProcess.run(["campaign", "status", "c1"], environment: ["FLEET_STORE": "postgres://u:secretpw@127.0.0.1/x"],
                                               timeout: .seconds(30))
        #expect(other.status == 64 && other.output.split(separator: "\n").count == 1 && !other.output.contains("secretpw"), "\(other.output)")
        // fleet profiles runs on PostgreSQL: a server that is not there is one line and exit 69, the password not shown.
        let dead = try TestEnvironment.freeLoopbackPort()
        let down = try await FleetProcess.run(["profiles", "show", "p1"], environment: ["FLEET_STORE": "postgres://u:secretpw@127.0.0.1:\(dead)/x"],
                                              timeout: .seconds(30))
        #expect(down.status == 69 && down.output.split(separator: "\n").count == 1 && !down.output.contains("secretpw"), "\(down.output)")
        // A worker checks the server before it starts: not there, one line and exit 69 (its supervisor restarts it).
        let deadWorker = try await FleetProcess.run(["worker", "--kinds", "noop"], environment: ["FLEET_STORE": "postgres://u:secretpw@127.0.0.1:\(dead)/x"],
                                                    timeout: .seconds(30))
        #expect(deadWorker.status == 69 && deadWorker.output.split(separator: "\n").count == 1 && !deadWorker.output.contains("secretpw"),
                "\(deadWorker.output)")
        let pool = try await FleetProcess.run(["worker", "--kinds", "noop"], environment: ["FLEET_STORE": "postgres://u@127.0.0.1/x?pool_size=0"],
                                              timeout: .seconds(30))
        #expect(pool.status == 64 && pool.output.contains("pool_size must be from 1 to 1000"), "\(pool.output)")
    }

    @Test("an unreachable broker is one line and exit 69")
    func unreachableBroker() async throws {
        let (status, output) = try await FleetProcess.run(["status", "--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2F"])
        #expect(status == 69)
        #expect(output.split(separator: "\n").count == 1, "\(output)")
        #expect(output.contains("cannot connect to the broker"))
    }

    @Test("a broker URL with several nodes, the first dead: commands and a worker reach the live one; all dead is one line and exit 69")
    func severalNodes() async throws {
        let live = try AMQPConfiguration(url: try TestBroker.url)
        let list = "amqp://guest:guest@127.0.0.1:1,\(live.host):\(live.port)/%2F"
        let prefix = TestBroker.uniquePrefix("nodes")
        let env = ["FLEET_AMQP_URL": list, "FLEET_PREFIX": prefix]
        let applied = try await FleetProcess.run(["topology", "apply", "--kinds", "noop"], environment: env)
        #expect(applied.status == 0, "\(applied.output)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix).ndjson")
        try (0..<20).map { #"{"id":"n\#($0)","kind":"noop"}"# }.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let enqueued = try await FleetProcess.run(["enqueue", file.path, "--no-progress"], environment: env)
        #expect(enqueued.status == 0 && enqueued.output.contains("enqueued 20 jobs"), "\(enqueued.output)")
        let worker = try FleetProcess(["worker", "--kinds", "noop"], environment: env.merging(["FLEET_STORE": file.path + ".sqlite"]) { $1 },
                                      logDirectory: FileManager.default.temporaryDirectory).start()
        let connection = try await TestBroker.connect()
        let drained = try await TestBroker.eventually(timeout: .seconds(30)) {
            (try await connection.queueStatus("\(prefix).results.all"))?.messages == 20
        }
        #expect(drained, "\(worker.log)")
        worker.signal(SIGTERM)
        _ = await worker.waitForExit()
        for declaration in FleetTopology(prefix: prefix, kinds: ["noop"]).declarations {
            if case .queue(let q) = declaration { try? await connection.delete(queue: q.name) }
        }
        await connection.close()
        try? FileManager.default.removeItem(atPath: file.path + ".sqlite")
        let dead = try await FleetProcess.run(["status", "--amqp-url", "amqp://guest:guest@127.0.0.1:1,127.0.0.1:2/%2F"])
        #expect(dead.status == 69 && dead.output.split(separator: "\n").count == 1, "\(dead.output)")
        #expect(dead.output.contains("127.0.0.1:1,127.0.0.1:2"), "\(dead.output)")
    }

    @Test("a worker's --metrics-port serves /healthz, /readyz (once connected) and /metrics on Hummingbird; other paths 404")
    func metricsPort() async throws {
        let prefix = TestBroker.uniquePrefix("metrics")
        let socket = try TestEnvironment.freeLoopbackPort()
        let store = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: store) }
        let worker = try FleetProcess(["worker", "--kinds", "noop", "--metrics-port", String(socket)],
                                      environment: ["FLEET_AMQP_URL": try TestBroker.url, "FLEET_PREFIX": prefix, "FLEET_STORE": store],
                                      logDirectory: FileManager.default.temporaryDirectory).start()
        func get(_ path: String) async -> (Int, String)? {
            guard let (data, response) = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(socket)\(path)")!),
                  let http = response as? HTTPURLResponse else { return nil }
            return (http.statusCode, String(decoding: data, as: UTF8.self))
        }
        let ready = try await TestBroker.eventually(timeout: .seconds(30)) { await get("/readyz")?.0 == 200 }
        #expect(ready, "\(worker.log)")
        #expect(await get("/healthz")?.1 == "ok\n")
        #expect(await get("/readyz")?.1 == "ready\n")
        let env = ["FLEET_AMQP_URL": try TestBroker.url, "FLEET_PREFIX": prefix]
        let enqueued = try await FleetProcess.run(["enqueue", "-", "--no-progress"], environment: env, stdin: Data(#"{"id":"m1","kind":"noop"}"#.utf8))
        #expect(enqueued.status == 0, "\(enqueued.output)")
        let counted = try await TestBroker.eventually(timeout: .seconds(30)) {
            await get("/metrics")?.1.contains(#"fleet_jobs_received_total{kind="noop"} 1"#) == true
        }
        let last = await get("/metrics")
        #expect(counted, "\(String(describing: last))")
        #expect(await get("/nope")?.0 == 404)
        worker.signal(SIGTERM)
        #expect(await worker.waitForExit() == 0)
        let connection = try await TestBroker.connect()
        for declaration in FleetTopology(prefix: prefix, kinds: ["noop"]).declarations {
            if case .queue(let q) = declaration { try? await connection.delete(queue: q.name) }
        }
        await connection.close()
    }

    @Test("enqueue reports invalid lines with their numbers, enqueues the rest, and exits non-zero")
    func enqueueBadLines() async throws {
        let prefix = TestBroker.uniquePrefix("enq")
        let env = ["FLEET_AMQP_URL": try TestBroker.url, "FLEET_PREFIX": prefix]
        #expect(try await FleetProcess.run(["topology", "apply", "--kinds", "noop"], environment: env).status == 0)
        let input = """
            {"id":"e1","kind":"noop"}
            not json
            {"id":"e2","kind":"noop"}
            {"kind":"noop"}

            {"id":"e3","kind":"noop","data":{"x":[1,2,3]}}
            """
        let (status, output) = try await FleetProcess.run(["enqueue", "-"], environment: env, stdin: Data(input.utf8))
        #expect(status == 65)
        #expect(output.contains("line 2: malformed_json"))
        #expect(output.contains("line 4: missing_id"))
        #expect(output.contains("enqueued 3 jobs"))
        let connection = try await TestBroker.connect()
        #expect(try await connection.queueStatus("\(prefix).noop")?.messages == 3)
        await TestBroker.cleanUp(.init(prefix: prefix, kinds: ["noop"]), connection: connection)
        await connection.close()
    }

    @Test("enqueue from standard input: 5,000 jobs, every one confirmed, exit 0")
    func enqueueManyFromStdin() async throws {
        let prefix = TestBroker.uniquePrefix("enqmany")
        let env = ["FLEET_AMQP_URL": try TestBroker.url, "FLEET_PREFIX": prefix]
        #expect(try await FleetProcess.run(["topology", "apply", "--kinds", "noop"], environment: env).status == 0)
        let input = (0..<5000).map { #"{"id":"m-\#($0)","kind":"noop"}"# }.joined(separator: "\n") + "\n"
        let (status, output) = try await FleetProcess.run(["enqueue", "-"], environment: env, stdin: Data(input.utf8))
        #expect(status == 0, "\(output)")
        #expect(output.contains("enqueued 5000 jobs"))
        let connection = try await TestBroker.connect()
        #expect(try await connection.queueStatus("\(prefix).noop")?.messages == 5000)
        await TestBroker.cleanUp(.init(prefix: prefix, kinds: ["noop"]), connection: connection)
        await connection.close()
    }

    @Test("settings come from flags, then the environment, then the config file")
    func configPrecedence() async throws {
        let dir = try TestBroker.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("fleet.json")
        try #"{"prefix": "fromfile", "queue_type": "quorum", "delivery_limit": 7}"#.write(to: config, atomically: true, encoding: .utf8)
        let fromFile = try await FleetProcess.run(["topology", "export", "--config", config.path])
        #expect(fromFile.status == 0)
        #expect(fromFile.output.contains("\"fromfile.jobs\""))
        #expect(fromFile.output.contains("\"x-delivery-limit\": 7"))
        let fromEnv = try await FleetProcess.run(["topology", "export", "--config", config.path], environment: ["FLEET_PREFIX": "fromenv"])
        #expect(fromEnv.output.contains("\"fromenv.jobs\""))
        let fromFlag = try await FleetProcess.run(["topology", "export", "--config", config.path, "--prefix", "fromflag"],
                                                  environment: ["FLEET_PREFIX": "fromenv"])
        #expect(fromFlag.output.contains("\"fromflag.jobs\""))

        try "{not json".write(to: config, atomically: true, encoding: .utf8)
        let bad = try await FleetProcess.run(["topology", "export", "--config", config.path])
        #expect(bad.status == 64)
        #expect(bad.output.split(separator: "\n").count == 1)
        #expect(bad.output.contains("not valid JSON"))
    }

    @Test("results --summary counts by kind and status, with the reasons of suppressed and the error codes of dead results")
    func resultsSummary() async throws {
        let prefix = TestBroker.uniquePrefix("sum")
        let topology = FleetTopology(prefix: prefix, kinds: ["noop", "email"])
        let env = ["FLEET_AMQP_URL": try TestBroker.url, "FLEET_PREFIX": prefix]
        #expect(try await FleetProcess.run(["topology", "apply", "--kinds", "noop,email"], environment: env).status == 0)
        let connection = try await TestBroker.connect()
        let results: [(String, String)] = [
            ("email.suppressed", #"{"job_id":"a","kind":"email","status":"suppressed","output":{"reason":"opted_out"}}"#),
            ("email.suppressed", #"{"job_id":"b","kind":"email","status":"suppressed","output":{"reason":"opted_out"}}"#),
            ("email.suppressed", #"{"job_id":"c","kind":"email","status":"suppressed","output":{"reason":"holdout"}}"#),
            ("email.succeeded", #"{"job_id":"d","kind":"email","status":"succeeded","output":{}}"#),
            ("noop.dead", #"{"job_id":"e","kind":"noop","status":"dead","error":{"code":"noop_failure","message":"x"}}"#),
        ]
        for (key, body) in results {
            _ = try await connection.publish(Array(body.utf8), to: topology.resultsExchange, routingKey: key,
                                             properties: .persistentJSON(messageID: key))
        }
        let queued = try await TestBroker.eventually(timeout: .seconds(10)) {
            try await connection.queueStatus(topology.resultsQueue)?.messages == UInt32(results.count)
        }
        #expect(queued)
        let (status, output) = try await FleetProcess.run(["results", "--summary"], environment: env)
        #expect(status == 0, "\(output)")
        #expect(output.contains("5 results in \(topology.resultsQueue)"), "\(output)")
        #expect(output.contains("  email suppressed: 3 (opted_out 2, holdout 1)"), "\(output)")
        #expect(output.contains("  email succeeded: 1\n"), "\(output)")
        #expect(output.contains("  noop dead: 1 (noop_failure 1)"), "\(output)")
        await TestBroker.cleanUp(topology, connection: connection)
        await connection.close()
    }
}

