import FleetCore
import FleetLinks
import Foundation
import ProfileStore

/// `fleet bench serve`: tracked-click redirects per second of `fleet serve` (each recording its `email_clicked`
/// event in the profile store before answering) against nginx answering a static 302, both pinned to one core
/// (CPU 1) with wrk on the other (CPU 0), one after the other in one run. Every request carries a distinct token,
/// so every request is a new event; the events in the store are counted afterwards.
public struct ServeBench: Sendable {
    public var seconds: Int
    public var connections: Int
    /// The `fleet` binary to run as the server.
    public var fleetBinary: String
    public var debugBuild: Bool
    public var output: BenchOutput

    public init(seconds: Int, connections: Int, fleetBinary: String, debugBuild: Bool, output: BenchOutput) {
        self.seconds = seconds
        self.connections = connections
        self.fleetBinary = fleetBinary
        self.debugBuild = debugBuild
        self.output = output
    }

    struct Run {
        var requests: Int
        var perSecond: Double
        var errors: Bool
        var cpuSeconds: Double?
    }

    public func run() async throws {
        for tool in ["/usr/bin/wrk", "/usr/sbin/nginx", "/usr/bin/taskset"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw BenchError("\(tool) is missing (bash Ops/scripts/install-deps.sh installs wrk and nginx-light)", code: .unavailable)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-bench-serve-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        output.line("fleet bench serve: click redirects, \(seconds) s per server, wrk -t1 -c\(connections) on CPU 0, server on CPU 1, \(debugBuild ? "debug" : "release") build")

        // The store, and one distinct click link per request (more than the run can send).
        let storePath = dir + "/fleet.sqlite"
        let store = ProfileStore(path: storePath)
        _ = try await store.apply([ProfileOperation(opID: "bench", timestampMillis: 1, body: .identify(profileID: "p-bench", traits: ["locale": "en"], identities: []))])
        store.close()
        let keys = "k1:fleet-bench-serve-key"
        let signer = LinkSigner(keys: try LinkKeys(parsing: keys), publicURL: "http://127.0.0.1")
        let count = 60_000 * seconds
        var paths = ""
        paths.reserveCapacity(count * 260)
        for i in 0..<count {
            let m = LinkClaims.Message(messageID: "bench:m\(i)", profileID: "p-bench", campaignID: "bench", variant: i % 2 == 0 ? "a" : "b")
            paths += String(signer.clickURL(m, link: 0, url: "https://shop.example.com/p/\(i % 100)").dropFirst(signer.publicURL.count)) + "\n"
        }
        try paths.write(toFile: dir + "/paths.txt", atomically: false, encoding: .utf8)
        try """
            local paths = {}
            for line in io.lines("\(dir)/paths.txt") do paths[#paths + 1] = line end
            local i = 0
            request = function()
              i = i + 1
              return wrk.format("GET", paths[((i - 1) % #paths) + 1])
            end
            """.write(toFile: dir + "/paths.lua", atomically: false, encoding: .utf8)

        // nginx: one worker, no access log, a static 302.
        let nginxPort = try SMTPSinkProcess.freePort()
        try """
            worker_processes 1; daemon off; pid \(dir)/nginx.pid; error_log \(dir)/nginx-error.log;
            events { worker_connections 1024; }
            http { access_log off; client_body_temp_path \(dir); proxy_temp_path \(dir); fastcgi_temp_path \(dir); uwsgi_temp_path \(dir); scgi_temp_path \(dir);
              server { listen 127.0.0.1:\(nginxPort); location / { return 302 https://shop.example.com/p/1; } } }
            """.write(toFile: dir + "/nginx.conf", atomically: false, encoding: .utf8)
        let nginx = try await SMTPSinkProcess.startServer(["/usr/bin/taskset", "-c", "1", "/usr/sbin/nginx", "-c", dir + "/nginx.conf", "-p", dir],
                                                          port: nginxPort, name: "nginx")
        let ceiling = try wrk(port: nginxPort, dir: dir, serverPID: nil)
        nginx.stop()

        let port = try SMTPSinkProcess.freePort()
        var env = ProcessInfo.processInfo.environment
        env["FLEET_STORE"] = storePath
        env["FLEET_LINK_KEYS"] = keys
        env["FLEET_PUBLIC_URL"] = "http://127.0.0.1"
        env["FLEET_LOG_LEVEL"] = "warning"
        let serve = try await SMTPSinkProcess.startServer(["/usr/bin/taskset", "-c", "1", fleetBinary, "serve", "--listen", "127.0.0.1:\(port)"],
                                                          port: port, environment: env, name: "fleet serve")
        let ours = try wrk(port: port, dir: dir, serverPID: serve.pid)
        // The same stack's floor: `/healthz` (no token, no store), to tell Hummingbird's own cost from the click's.
        let floor = try wrk(port: port, dir: dir, serverPID: serve.pid, path: "/healthz")
        serve.stop()

        let check = ProfileStore(path: storePath, readers: 1)
        let events = try await check.read { try $0.events(since: 0, named: ["email_clicked"], purchases: false).count }
        check.close()

        let ratio = ours.perSecond / max(1, ceiling.perSecond)
        let cpuPerRequest = ours.cpuSeconds.map { $0 / Double(max(1, ours.requests)) * 1e6 }
        output.line(String(format: "  nginx static 302:        %9.0f requests/s (%d requests%@)", ceiling.perSecond, ceiling.requests, ceiling.errors ? ", ERRORS" : ""))
        output.line(String(format: "  fleet serve /c/ + event: %9.0f requests/s (%d requests%@), %.1f µs CPU per click", ours.perSecond, ours.requests,
                           ours.errors ? ", ERRORS" : "", cpuPerRequest ?? .nan))
        // wrk counts the responses it read; requests in flight when it stopped were answered (and recorded) too.
        let lost = events < ours.requests || events > ours.requests + connections
        output.line(String(format: "  fleet serve /healthz:    %9.0f requests/s (%d requests%@), %.1f µs CPU per request: the HTTP stack alone",
                           floor.perSecond, floor.requests, floor.errors ? ", ERRORS" : "", floor.cpuSeconds.map { $0 / Double(max(1, floor.requests)) * 1e6 } ?? .nan))
        output.line("  events recorded: \(events) for \(ours.requests) clicks counted by wrk (each token distinct; up to \(connections) more were in flight at the end)")
        output.line(String(format: "  fleet serve / nginx: %.2f (target >= 0.3); /healthz / nginx: %.2f", ratio, floor.perSecond / max(1, ceiling.perSecond)))
        var o = JSONObject()
        o["nginx_per_second"] = JSONValue.number(ceiling.perSecond, places: 0)
        o["serve_per_second"] = JSONValue.number(ours.perSecond, places: 0)
        o["serve_requests"] = .int(Int64(ours.requests))
        o["events_recorded"] = .int(Int64(events))
        o["serve_cpu_us_per_request"] = JSONValue.number(cpuPerRequest, places: 1)
        o["healthz_per_second"] = JSONValue.number(floor.perSecond, places: 0)
        o["errors"] = .bool(ours.errors || ceiling.errors)
        o["ratio"] = JSONValue.number(ratio, places: 3)
        output.figures(o)
        if ours.errors || lost {
            throw BenchError("fleet serve answered errors or recorded \(events) events for \(ours.requests) clicks")
        }
    }

    /// One wrk run against `port`; with `serverPID`, also that process's CPU seconds during the run.
    func wrk(port: Int, dir: String, serverPID: pid_t?, path: String? = nil) throws -> Run {
        let before = serverPID.flatMap(ProcessCPU.seconds(pid:))
        let target = path.map { ["http://127.0.0.1:\(port)\($0)"] } ?? ["-s", dir + "/paths.lua", "http://127.0.0.1:\(port)"]
        guard let outcome = BenchSubprocess.run("/usr/bin/taskset", ["-c", "0", "/usr/bin/wrk", "-t1", "-c\(connections)", "-d\(seconds)s"] + target) else {
            throw BenchError("cannot run wrk", code: .unavailable)
        }
        let after = serverPID.flatMap(ProcessCPU.seconds(pid:))
        guard outcome.status == 0,
              let line = outcome.output.split(separator: "\n").first(where: { $0.contains("requests in") }),
              let requests = Int(line.trimmingCharacters(in: .whitespaces).split(separator: " ")[0]),
              let rps = outcome.output.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") })
                .flatMap({ Double($0.split(separator: " ").last ?? "") }) else {
            throw BenchError("wrk failed: \(outcome.output)")
        }
        let errors = outcome.output.contains("Non-2xx or 3xx") || outcome.output.contains("Socket errors")
        return Run(requests: requests, perSecond: rps, errors: errors, cpuSeconds: before.flatMap { b in after.map { $0 - b } })
    }
}
