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
                continuation.resume(with: Result { try Self.writeFile(directory: directory, jobID: jobID, bytes: bytes) })
            }
        }
    }

    /// Plain POSIX calls (the directory is created when missing, then the file is written under a temporary
    /// name of this process and renamed).
    private static func writeFile(directory: String, jobID: String, bytes: [UInt8]) throws -> String {
        let name = fileName(jobID: jobID)
        let path = "\(directory)/\(name)"
        let tmp = "\(directory)/.tmp-\(getpid())-\(name)"
        var fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 && errno == ENOENT {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else {
            throw EmailError("outbox_unavailable", "cannot write to the outbox directory (errno \(errno))", retryable: true)
        }
        var written = 0
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return true
        }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw EmailError("outbox_unavailable", "cannot write the message into the outbox (errno \(errno))", retryable: true)
        }
        return path
    }
}
