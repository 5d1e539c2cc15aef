import FleetCore
import FleetRuntime
import FleetStore
import Logging
import ProfileStore

/// The `crm` kind: applies CRM sync operations (identify, track, alias/merge, consent, device, erase, batch)
/// to the shared profile store. See Docs/contract/crm.md.
///
/// Every operation is idempotent by its op id and applied in its own savepoint; the job's output lists each
/// operation as applied, skipped (stale, duplicate, suppressed) or rejected (with the reason). A job whose
/// operations were all skipped because the person was erased ends `suppressed`; a job whose operations were all
/// rejected ends `dead` with the first operation's reason as its code (the per-op list in the result's `output`). A store failure (lock timeout,
/// disk) is retryable: nothing of the job was applied.
public struct CRMHandler: JobHandler {
    public let kind = "crm"
    /// The store the operations go to: the SQLite `ProfileStore`, or PostgreSQL's (`FLEET_STORE=postgres://`).
    public let store: any ProfileOperationStore

    /// Creates a handler on `store`.
    public init(store: any ProfileOperationStore) {
        self.store = store
    }

    /// `data`, decoded into operations (and the rejections of those that do not decode). `data` that is not an
    /// operation or a batch at all is `invalid_crm_job` (Docs/contract/crm.md).
    public struct Parameters: JobParameters {
        public var entries: [CRMOperationDecoder.Entry]

        public init(job: JobEnvelope) throws(JobParameterError) {
            entries = try CRMOperationDecoder.decode(job.data)
        }
    }

    /// The crm kind keeps the code it has always had for a job it cannot read.
    public var invalidParametersCode: String { "invalid_crm_job" }

    public func handle(_ parameters: Parameters, context: JobContext) async throws -> JobOutcome {
        let entries = parameters.entries
        var operations: [ProfileOperation] = []
        operations.reserveCapacity(entries.count)
        for case .operation(let op) in entries { operations.append(op) }
        // A store failure is `store_unavailable` (retried), by the error types' own mapping.
        let applied = try await store.apply(operations)
        var next = applied.makeIterator()
        var results: [OperationResult] = []
        results.reserveCapacity(entries.count)
        for entry in entries {
            switch entry {
            case .operation: if let r = next.next() { results.append(r) }
            case .rejected(let r): results.append(r)
            }
        }
        let output = Self.output(results)
        let counts = Self.counts(results)
        if counts.rejected > 0 {
            context.logger.info("crm ops rejected", metadata: ["crm.rejected": "\(counts.rejected)", "crm.ops": "\(results.count)"])
        }
        if !results.isEmpty, results.allSatisfy({ $0.status == .skipped && $0.reason == "suppressed" }) {
            return .suppressed(reason: "erased", output: output)
        }
        if let first = results.first, results.allSatisfy({ $0.status == .rejected }) {
            // Nothing of the job could be applied: a CRM system must see it fail, not succeed.
            let op = first.op.isEmpty ? "" : " (\(first.op))"
            throw JobError(
                code: first.reason ?? "invalid_crm_job",
                message: "every op of the job was rejected (\(results.count)); the first, \(first.opID)\(op): \(first.message ?? first.reason ?? "")",
                retryable: false, output: output)
        }
        return .succeeded(output: output)
    }

    static func counts(_ results: [OperationResult]) -> (applied: Int, skipped: Int, rejected: Int) {
        var c = (applied: 0, skipped: 0, rejected: 0)
        for r in results {
            switch r.status {
            case .applied: c.applied += 1
            case .skipped: c.skipped += 1
            case .rejected: c.rejected += 1
            }
        }
        return c
    }

    /// `{"applied": n, "skipped": n, "rejected": n, "ops": [{op_id, op, status, reason?, message?, stale_fields?}]}`.
    static func output(_ results: [OperationResult]) -> JSONValue {
        let c = counts(results)
        var o = JSONObject()
        o["applied"] = .int(Int64(c.applied))
        o["skipped"] = .int(Int64(c.skipped))
        o["rejected"] = .int(Int64(c.rejected))
        o["ops"] = .array(results.map(\.json))
        return .object(o)
    }
}
