import Logging

/// Logs about one job with `job.id` and `job.kind` metadata, attached only when a message is actually
/// logged (attaching metadata to a `Logger` per job costs more than a `noop` job's work).
struct JobLog: Sendable {
    let base: Logger
    let id: String?
    let kind: String

    private func metadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        var m = extra
        m["job.kind"] = "\(kind)"
        if let id { m["job.id"] = "\(id)" }
        return m
    }

    func debug(_ message: @autoclosure () -> Logger.Message, metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
        guard base.logLevel <= .debug else { return }
        base.debug(message(), metadata: metadata(extra()))
    }

    func info(_ message: @autoclosure () -> Logger.Message, metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
        guard base.logLevel <= .info else { return }
        base.info(message(), metadata: metadata(extra()))
    }

    func warning(_ message: @autoclosure () -> Logger.Message, metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
        guard base.logLevel <= .warning else { return }
        base.warning(message(), metadata: metadata(extra()))
    }

    func error(_ message: @autoclosure () -> Logger.Message, metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
        base.error(message(), metadata: metadata(extra()))
    }
}
