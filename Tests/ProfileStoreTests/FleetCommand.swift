import FleetTestSupport
import Foundation

/// Runs the built `fleet` binary (`FLEET_BIN`, else `.build/debug/fleet`) to completion, with stdout and stderr
/// kept apart (the show command prints a person's data on stdout; nothing may log it on stderr).
struct FleetCommand {
    var status: Int32
    var stdout: String
    var stderr: String

    /// Runs `fleet arguments` on the store `store`, with every log level enabled (`trace`), so a test sees anything
    /// a command could log.
    static func run(_ arguments: [String], store: String, in directory: URL) throws -> FleetCommand {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: KindFleet.fleetBinary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["FLEET_STORE"] = store
        env["FLEET_LOG_LEVEL"] = "trace"
        process.environment = env
        process.currentDirectoryURL = directory
        let id = UUID().uuidString.prefix(8)
        let out = directory.appendingPathComponent("out-\(id).txt")
        let err = directory.appendingPathComponent("err-\(id).txt")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out)
        let errHandle = try FileHandle(forWritingTo: err)
        defer {
            try? outHandle.close()
            try? errHandle.close()
        }
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return FleetCommand(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}
