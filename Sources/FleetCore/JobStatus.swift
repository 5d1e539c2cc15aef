/// The status of a result. `succeeded`, `suppressed` and `dead` are final; `failed` (retrying) and
/// `deferred` (runs later) are not.
public enum JobStatus: String, Sendable, Hashable, CaseIterable {
    case succeeded, suppressed, deferred, failed, dead

    /// Whether this status ends the job.
    public var isFinal: Bool {
        switch self {
        case .succeeded, .suppressed, .dead: return true
        case .deferred, .failed: return false
        }
    }
}
