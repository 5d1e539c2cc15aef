import Foundation
import FleetCore

/// A small deterministic random number generator (SplitMix64), so that jitter tests draw the same
/// numbers on every run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum TestSupport {
    /// The repository root (three levels above this file: Tests/FleetCoreTests/Support.swift).
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// Parses, returning the error (nil when the text parsed).
    static func parseError(_ bytes: [UInt8]) -> JSONParseError? {
        do {
            _ = try JSONValue(parsing: bytes)
            return nil
        } catch {
            return error
        }
    }

    static func parseError(_ text: String) -> JSONParseError? { parseError(Array(text.utf8)) }

    /// Decodes a job body, returning the error (nil when it decoded).
    static func jobError(_ body: [UInt8], maxBytes: Int = 1 << 20) -> JobError? {
        do {
            _ = try JobEnvelope.decode(body, maxBytes: maxBytes)
            return nil
        } catch {
            return error
        }
    }

    static func jobError(_ text: String) -> JobError? { jobError(Array(text.utf8)) }

    /// The result of a child process.
    struct ProcessResult {
        var status: Int32
        var output: String
    }

    struct ProcessTimeout: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a program to completion with its output (stdout and stderr) in a file, polling `isRunning`
    /// (no Pipe: a full pipe would block the child).
    static func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws
        -> ProcessResult
    {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleetcore-proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outputURL = dir.appendingPathComponent("output.txt")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: outputURL)
        defer { try? handle.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            process.terminate()
            throw ProcessTimeout(description: "\(executable) \(arguments.first ?? "") did not finish within \(timeout)")
        }
        let output = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        return ProcessResult(status: process.terminationStatus, output: output)
    }

    /// The path of an executable on PATH, or nil.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
