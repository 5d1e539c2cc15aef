import Foundation
import Testing

/// Every error code a worker can put in a result is written in the contract (Docs/contract/*.md or a worker's
/// README), so that a scheduler in another language can match on it.
@Suite("Error codes: the code against the docs")
struct ErrorCodeDocTests {
    /// Codes that never reach a result: `invalid_result` (the CLI decoding a result), `aborted` (`email preview`),
    /// `email_configuration`, `push_configuration` and `content_configuration` (settings checked at start: the worker does not start), `cancelled` (a run cancelled at
    /// shutdown: the job goes back to the queue without a result).
    static let notInResults: Set<String> = ["invalid_result", "aborted", "email_configuration", "push_configuration", "content_configuration", "cancelled"]

    @Test("each code in a JobError, EmailError or SMTPError of the sources is documented")
    func codesAreDocumented() throws {
        let repo = TestBroker.repo
        let patterns = [
            #"JobError\.(?:permanent|retryable)\("([a-z_]+)""#, #"\.(?:permanent|retryable)\("([a-z_]+)""#,
            #"JobError\(code: "([a-z_]+)""#, #"EmailError\("([a-z_]+)""#, #"PushError\("([a-z_]+)""#, #"ContentError\("([a-z_]+)""#, #"SMTPError\(code: "([a-z_]+)""#,
            #"public static let [a-zA-Z]+ = "([a-z_]+)""#,
        ].map { try! Regex($0) }
        var codes: Set<String> = []
        for folder in ["Sources/FleetCore", "Sources/FleetRuntime", "Workers"] {
            let root = repo.appendingPathComponent(folder)
            let files = try #require(FileManager.default.enumerator(atPath: root.path)).compactMap { $0 as? String }
            for file in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
                for pattern in patterns {
                    for match in text.matches(of: pattern) {
                        if let code = match.output[1].substring { codes.insert(String(code)) }
                    }
                }
            }
        }
        #expect(codes.count > 25, "\(codes.sorted())")
        var docs = ""
        let contract = repo.appendingPathComponent("Docs/contract")
        for name in try FileManager.default.contentsOfDirectory(atPath: contract.path) where name.hasSuffix(".md") {
            docs += try String(contentsOf: contract.appendingPathComponent(name), encoding: .utf8)
        }
        for worker in try FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("Workers").path) {
            let readme = repo.appendingPathComponent("Workers/\(worker)/README.md")
            if let text = try? String(contentsOf: readme, encoding: .utf8) { docs += text }
        }
        let missing = codes.subtracting(Self.notInResults).filter { !docs.contains("`\($0)`") }
        #expect(missing.isEmpty, "codes in results that no doc names: \(missing.sorted())")
    }
}
