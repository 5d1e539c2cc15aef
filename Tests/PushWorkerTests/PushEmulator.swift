import FleetCore
import FleetTestSupport
import Foundation

/// The local APNs + FCM emulator (Ops/push-emulator/push_emulator.py: HTTP/2 over TLS with its own test CA, real JWT checks), with
/// credentials made by make_credentials.py, in a fresh directory; stopped with SIGTERM on `stop()`.
final class PushEmulator: @unchecked Sendable {
    /// Ops/push-emulator/ of the repository.
    static let here = TestEnvironment.repo.appendingPathComponent("Ops/push-emulator").path

    let directory: String
    let process = Process()
    /// credentials.json of make_credentials.py, and ready.json of the emulator.
    let credentials: JSONValue
    let ready: JSONValue

    var url: String { ready["url"]?.stringValue ?? "" }
    var caFile: String { ready["ca_file"]?.stringValue ?? "" }
    var keyPEM: String { (try? String(contentsOfFile: credentials["apns_private_key"]?.stringValue ?? "", encoding: .utf8)) ?? "" }
    var keyID: String { credentials["apns_key_id"]?.stringValue ?? "" }
    var teamID: String { credentials["apns_team_id"]?.stringValue ?? "" }
    /// The service-account file with the emulator's real token URI.
    var serviceAccountFile: String {
        ready["fcm_credentials_effective"]?.objectValue?.first(where: { _ in true })?.1.stringValue ?? ""
    }
    var acceptedFile: String { directory + "/accepted.ndjson" }

    /// `arguments`: more options of push_emulator.py (`--no-apns-token-update-limit`, `--fault-rate 0.1`, ...).
    init(unregistered: [String] = [], arguments: [String] = []) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-push-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        make.arguments = ["python3", Self.here + "/make_credentials.py", "--out", directory + "/creds"]
        make.standardOutput = FileHandle.nullDevice
        try make.run()
        while make.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        guard make.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        credentials = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/creds/credentials.json"))))
        try unregistered.joined(separator: "\n").write(toFile: directory + "/unregistered.txt", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.here + "/push_emulator.py", "--host", "127.0.0.1", "--port", "0",
                             "--state-dir", directory + "/state",
                             "--apns-key-id", credentials["apns_key_id"]?.stringValue ?? "",
                             "--apns-team-id", credentials["apns_team_id"]?.stringValue ?? "",
                             "--apns-public-key", credentials["apns_public_key"]?.stringValue ?? "",
                             "--fcm-credentials", credentials["fcm_credentials"]?.stringValue ?? "",
                             "--unregistered", directory + "/unregistered.txt", "--accepted", directory + "/accepted.ndjson",
                             "--ready-file", directory + "/ready.json"] + arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let readyPath = directory + "/ready.json"
        let deadline = ContinuousClock.now + .seconds(30)
        var found: JSONValue?
        while ContinuousClock.now < deadline, process.isRunning {
            if let data = FileManager.default.contents(atPath: readyPath), let json = try? JSONValue(parsing: Array(data)) {
                found = json
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let found else {
            process.terminate()
            throw CocoaError(.fileReadNoSuchFile)
        }
        ready = found
    }

    /// The worker's `FLEET_PUSH_*` settings for this emulator (the APNs key written to `directory`), with the
    /// repository's templates.
    func environment(directory: URL) throws -> [String: String] {
        let keyFile = directory.appendingPathComponent("AuthKey.p8").path
        try keyPEM.write(toFile: keyFile, atomically: true, encoding: .utf8)
        return [
            "FLEET_PUSH_TEMPLATES": TestEnvironment.repo.appendingPathComponent("Templates").path,
            "FLEET_PUSH_APNS_URL": url, "FLEET_PUSH_FCM_URL": url, "FLEET_PUSH_CA_FILE": caFile,
            "FLEET_PUSH_APNS_KEY_FILE": keyFile, "FLEET_PUSH_APNS_KEY_ID": keyID, "FLEET_PUSH_APNS_TEAM_ID": teamID,
            "FLEET_PUSH_APNS_TOPIC": "com.example.shop", "FLEET_PUSH_FCM_CREDENTIALS": serviceAccountFile,
        ]
    }

    /// The pushes the emulator accepted (one JSON object each).
    func accepted() -> [JSONValue] {
        guard let text = try? String(contentsOfFile: acceptedFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
    }

    /// SIGTERM, then waits (polling: Foundation's `waitUntilExit` can hang when called from a task) up to 5 s for
    /// the exit, then SIGKILL.
    func stop() async {
        if process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `body` with a started emulator, and stops it afterwards (also when `body` throws).
    static func with<T>(unregistered: [String] = [], arguments: [String] = [], _ body: (PushEmulator) async throws -> T) async throws -> T {
        let emulator = try await PushEmulator(unregistered: unregistered, arguments: arguments)
        do {
            let result = try await body(emulator)
            await emulator.stop()
            return result
        } catch {
            await emulator.stop()
            throw error
        }
    }
}
