import Dispatch
import Foundation

/// Writes messages as `.eml` files into a directory (a dry run), on a dedicated queue. A file is written to
/// a temporary name and renamed, so a file is complete or absent, and a re-run job overwrites its own file.
public final class OutboxWriter: Sendable {
    public let directory: String
    private let queue = DispatchQueue(label: "fleet.email.outbox")

    public init(directory: String) {
        self.directory = directory
    }

    /// The file name of a job's message.
    public static func fileName(jobID: String) -> String {
        let safe = jobID.unicodeScalars.map { s -> String in
            (s.properties.isAlphabetic && s.isASCII) || ("0"..."9").contains(s) || s == "-" || s == "_" || s == "." ? String(s) : "_"
        }.joined()
        return (safe.hasPrefix(".") ? "_" + safe : safe) + ".eml"
    }

    /// Writes `bytes` as the job's file; returns its path.
    public func write(jobID: String, bytes: [UInt8]) async throws -> String {
        let directory = self.directory
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    let path = "\(directory)/\(Self.fileName(jobID: jobID))"
                    let tmp = "\(directory)/.tmp-\(UUID().uuidString)"
                    guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes)) else {
                        throw EmailError("outbox_unavailable", "cannot write to the outbox directory", retryable: true)
                    }
                    guard rename(tmp, path) == 0 else {
                        throw EmailError("outbox_unavailable", "cannot rename into the outbox (errno \(errno))", retryable: true)
                    }
                    return path
                })
            }
        }
    }
}
