import Foundation
import Testing

/// Runs the built `fleet` executable (`FLEET_BIN`, else `<repo>/.build/debug/fleet`) and other programs as
/// child processes, capturing stdout and stderr separately.
enum CLIRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// Non-empty lines of stderr.
        var errorLines: [Substring] { stderr.split(separator: "\n") }
    }

    struct SetupError: Error, CustomStringConvertible { var description: String }

    /// The repository root: `FLEET_REPO`, else derived from this file's path.
    static var repo: URL {
        if let r = ProcessInfo.processInfo.environment["FLEET_REPO"], !r.isEmpty { return URL(fileURLWithPath: r) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    static var fleetBinary: String {
        get throws {
            if let b = ProcessInfo.processInfo.environment["FLEET_BIN"], !b.isEmpty { return b }
            let candidate = repo.appendingPathComponent(".build/debug/fleet").path
            guard FileManager.default.isExecutableFile(atPath: candidate) else {
                throw SetupError(description: "the fleet executable is not built: run 'swift build' or Ops/scripts/test.sh")
            }
            return candidate
        }
    }

    /// Runs `fleet arguments...` in `directory`.
    static func fleet(_ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:],
                      stdin: Data? = nil) async throws -> Result {
        try await run(try fleetBinary, arguments, in: directory, environment: environment, stdin: stdin)
    }

    /// Runs `executable` (a path) to completion.
    static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil,
                    environment: [String: String] = [:], stdin: Data? = nil) async throws -> Result {
        let scratch = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout")
        let errURL = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            if let stdin {
                input.fileHandleForWriting.write(stdin)
                try? input.fileHandleForWriting.close()
            }
        }
        return Result(
            status: status, stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// A fresh temporary directory (the caller removes it).
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-cli-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Writes `files` (relative path → text) under `directory`.
    static func write(_ files: [String: String], in directory: URL) throws {
        for (path, text) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    /// The first executable `name` on PATH.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

extension Tag {
    /// Slow tests (seconds, not milliseconds): they run subprocesses over the whole workload.
    @Tag static var slow: Self
}
