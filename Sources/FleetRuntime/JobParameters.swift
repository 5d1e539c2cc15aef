import FleetCore

/// A kind's parameters, decoded by the runtime from the job before its handler runs (swift-jobs' typed job
/// parameters). Each kind documents them in `Docs/contract/<kind>-job.schema.json`.
///
/// They come from the job's `data` and its other top-level fields (``JobEnvelope/fields``): schedulers may give
/// `profile_id`, `template` or `campaign` at the top level, as the contract has always accepted.
public protocol JobParameters: Sendable {
    /// Reads the parameters of `job`. Throws ``JobParameterError`` naming the field that is missing or wrong: the
    /// job is then `dead` with the kind's ``JobHandler/invalidParametersCode`` and the handler does not run.
    init(job: JobEnvelope) throws(JobParameterError)
}

/// A parameter that is missing or wrong: which one, and what is wrong with it (never its value).
public struct JobParameterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The field, as a path (`template`, `campaign.variants`).
    public var field: String
    /// What is wrong, naming the field: `'template' is required`.
    public var message: String

    /// `'<field>' <problem>` (`problem`: `is required`, `must be a string`).
    public init(field: String, _ problem: String) {
        self.field = field
        self.message = "'\(field)' \(problem)"
    }

    /// A message that already names the field.
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    /// `'<field>' is required`.
    public static func missing(_ field: String) -> JobParameterError { JobParameterError(field: field, "is required") }

    /// `'<field>' must be <expected>, not <type>`.
    public static func wrongType(_ field: String, expected: String, got value: JSONValue) -> JobParameterError {
        JobParameterError(field: field, "must be \(expected), not \(value.typeName)")
    }

    public var description: String { message }
}

/// Parameters of a kind that takes none of its own (it reads `data` as it likes).
public struct NoParameters: JobParameters {
    public init(job: JobEnvelope) {}
}

extension JobParameters {
    /// The value of a parameter given at the top level of the job or in `data` (the top level wins), or nil.
    public static func field(_ name: String, of job: JobEnvelope) -> JSONValue? {
        if let v = job.fields[name], v != .null { return v }
        if let v = job.data[name], v != .null { return v }
        return nil
    }

    /// A string parameter (at the top level or in `data`), or nil when absent; wrong types throw.
    public static func string(_ name: String, of job: JobEnvelope) throws(JobParameterError) -> String? {
        guard let v = field(name, of: job) else { return nil }
        guard case .string(let s) = v else { throw .wrongType(name, expected: "a string", got: v) }
        return s
    }
}
