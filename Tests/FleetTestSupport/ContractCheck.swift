import Foundation

/// Validates result bodies that workers really published against Docs/contract's schemas, with the contract's own
/// checker (`python3 Ops/scripts/check-contract.py --results DIR`): the envelope's `result.schema.json` and the
/// kind's `<kind>-result.schema.json`.
public enum ContractCheck {
    /// One body per (kind, status) of `bodies` (the first seen), so the checker sees each shape once.
    public static func onePerKindAndStatus(_ bodies: [[UInt8]]) -> [[UInt8]] {
        var seen: Set<String> = []
        var picked: [[UInt8]] = []
        for body in bodies {
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                  let kind = object["kind"] as? String, let status = object["status"] as? String else { continue }
            var key = "\(kind).\(status)"
            if let output = object["output"] as? [String: Any], let reason = output["reason"] as? String { key += ".\(reason)" }
            if seen.insert(key).inserted { picked.append(body) }
        }
        return picked
    }

    /// Writes the bodies to a temporary directory and runs the checker; returns its exit status and output.
    /// `requireKinds`: the checker fails unless a valid result of each of these kinds was among them.
    public static func validate(_ bodies: [[UInt8]], requireKinds: [String]) async throws -> (status: Int32, output: String) {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (i, body) in bodies.enumerated() {
            try Data(body).write(to: dir.appendingPathComponent(String(format: "result-%04d.json", i)))
        }
        let script = TestEnvironment.repo.appendingPathComponent("Ops/scripts/check-contract.py").path
        return try await TestEnvironment.runLeavingDaemons(
            ["python3", script, "--results", dir.path, "--require-kinds", requireKinds.joined(separator: ",")])
    }
}
