import Foundation

/// A `fleet` command run as a real child process (workers are killed with real signals in tests).
final class FleetProcess: @unchecked Sendable {
    let process = Process()
    let logURL: URL
    /// Where stderr goes when it is kept apart from stdout (`separateStderr`); else nil (both go to `logURL`).
    let errorLogURL: URL?

    init(_ arguments: [String], environment: [String: String] = [:], logDirectory: URL, separateStderr: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: try TestBroker.fleetBinary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        logURL = logDirectory.appendingPathComponent("fleet-\(UUID().uuidString.prefix(6)).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        if separateStderr {
            let errorLogURL = logDirectory.appendingPathComponent("fleet-\(UUID().uuidString.prefix(6)).stderr")
            _ = FileManager.default.createFile(atPath: errorLogURL.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: errorLogURL)
            self.errorLogURL = errorLogURL
        } else {
            process.standardError = log
            errorLogURL = nil
        }
        process.standardInput = FileHandle.nullDevice
    }

    func start() throws -> Self {
        try process.run()
        return self
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the process to exit; returns its status, or nil after the timeout.
    func waitForExit(timeout: Duration = .seconds(60)) async -> Int32? {
        let start = ContinuousClock.now
        let deadline = start + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            // Foundation learns of the exit from SIGCHLD; a full run of the suite once had a process that had exited
            // (it printed its last line) still "running" two minutes later. A child that has been a zombie for a
            // while is reaped here, and its own exit status returned.
            if start.duration(to: .now) > .seconds(5), kernelState.contains("zombie"), let status = reap() { return status }
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// `waitpid` for this child if it has exited: its exit status (128 + the signal when killed), else nil.
    private func reap() -> Int32? {
        var status: Int32 = 0
        guard waitpid(process.processIdentifier, &status, WNOHANG) == process.processIdentifier else {
            return process.isRunning ? nil : process.terminationStatus
        }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// The kernel's view of the process (`/proc/<pid>/status` State and `wchan`), for a timeout's message: a
    /// process that hangs (`S`, `D`) differs from one that exited but was not reaped (`Z`).
    var kernelState: String {
        let pid = process.processIdentifier
        let state = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("State:") }.map(String.init) ?? "no /proc entry"
        let wchan = (try? String(contentsOfFile: "/proc/\(pid)/wchan", encoding: .utf8)) ?? "?"
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task"))?.count ?? 0
        return "\(state), wchan \(wchan), \(threads) threads"
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// What it wrote on stderr, when that was kept apart.
    var errorLog: String { errorLogURL.flatMap { try? String(contentsOf: $0, encoding: .utf8) } ?? "" }

    /// Runs a fleet command to completion and returns (status, output).
    static func run(_ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil,
                    timeout: Duration = .seconds(120)) async throws -> (status: Int32, output: String) {
        let dir = try TestBroker.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try FleetProcess(arguments, environment: environment, logDirectory: dir)
        if let stdin {
            let pipe = Pipe()
            p.process.standardInput = pipe
            try p.process.run()
            pipe.fileHandleForWriting.write(stdin)
            try pipe.fileHandleForWriting.close()
        } else {
            try p.process.run()
        }
        guard let status = await p.waitForExit(timeout: timeout) else {
            let state = p.kernelState
            p.signal(SIGKILL)
            throw TestBroker.SetupError(description: "fleet \(arguments.joined(separator: " ")) did not finish (\(state)); log: \(p.log)")
        }
        return (status, p.log)
    }

    /// Runs a fleet command to completion and returns its status, stdout and stderr (kept apart).
    static func runSeparately(_ arguments: [String], environment: [String: String] = [:],
                              timeout: Duration = .seconds(120)) async throws -> (status: Int32, stdout: String, stderr: String) {
        let dir = try TestBroker.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try FleetProcess(arguments, environment: environment, logDirectory: dir, separateStderr: true)
        try p.process.run()
        guard let status = await p.waitForExit(timeout: timeout) else {
            let state = p.kernelState
            p.signal(SIGKILL)
            throw TestBroker.SetupError(description: "fleet \(arguments.joined(separator: " ")) did not finish (\(state)); stdout: \(p.log); stderr: \(p.errorLog)")
        }
        return (status, p.log, p.errorLog)
    }
}
