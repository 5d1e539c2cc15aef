/// How a template is rendered.
public struct LiquidRenderOptions: Sendable {
    /// What a render error does (a filter argument error, a bad comparison, a missing partial, ...).
    public enum ErrorMode: Sendable, Hashable {
        /// As Ruby's `Template#render`: the failed tag or output writes `Liquid error: <message>` and the
        /// render goes on.
        case inline
        /// As Ruby's `Template#render!`: the render fails with the ``LiquidError``.
        case raise
    }

    /// What a lookup of an undefined variable or attribute does. (The `.error` policy is our marketing
    /// extension of Ruby's `strict_variables`: it names the missing path, never a value.)
    public enum MissingVariablePolicy: Sendable, Hashable {
        /// Render nothing / evaluate to `nil`, as Liquid does.
        case blank
        /// Fail the render with `.undefinedVariable` naming the variable path (e.g. `profile.first_name`),
        /// wherever the lookup happens (Ruby's `strict_variables: true`).
        case error
        /// Fail only when a missing value would be written by `{{ x }}` / `echo` without filters; conditions,
        /// filters such as `default`, and loops still see `nil`. The practical policy for messages.
        case errorInOutput
    }

    /// Render errors inline or raise them. `nil` (the default) means: inline for templates parsed in lax
    /// mode, raise for templates parsed in strict mode.
    public var errorMode: ErrorMode?
    /// Undefined variables.
    public var missingVariables: MissingVariablePolicy
    /// Resource limits.
    public var limits: LiquidLimits
    /// Where `include` and `render` find partials (a ``LiquidTemplateLibrary`` or an
    /// ``LiquidInMemoryFileSystem``); `nil` makes them fail.
    public var fileSystem: (any LiquidFileSystem)?
    /// The instant `date` treats as "now" (seconds since 1970); `nil` reads the clock once per render.
    public var now: Double?
    /// Seconds east of UTC for `date` when its input has no zone.
    public var utcOffset: Int

    /// Options; the defaults are Ruby Liquid's lax rendering with ``LiquidLimits`` defaults.
    public init(
        errorMode: ErrorMode? = nil, missingVariables: MissingVariablePolicy = .blank,
        limits: LiquidLimits = LiquidLimits(), fileSystem: (any LiquidFileSystem)? = nil, now: Double? = nil,
        utcOffset: Int = 0
    ) {
        self.errorMode = errorMode
        self.missingVariables = missingVariables
        self.limits = limits
        self.fileSystem = fileSystem
        self.now = now
        self.utcOffset = utcOffset
    }
}
