/// Resource limits for rendering untrusted templates. Going over one fails the render with a
/// ``LiquidError`` whose code names the limit (`.outputLimitExceeded`, `.loopLimitExceeded`,
/// `.depthLimitExceeded`, `.timeLimitExceeded`), whatever the error mode.
public struct LiquidLimits: Sendable, Hashable {
    /// Maximum bytes of output (also bounds `capture` buffers and assigned strings). Default 4 MiB.
    public var maxOutputBytes: Int
    /// Maximum loop iterations (`for`, `tablerow`, `render ... for`, `include ... for`) in total across
    /// one render, partials included. Default 1,000,000.
    public var maxLoopIterations: Int
    /// Maximum `include` / `render` nesting. Default 16.
    public var maxRenderDepth: Int
    /// Maximum wall time of one render, checked every few hundred loop iterations and at every
    /// `include` / `render`; `nil` for none. Default 2 seconds.
    public var maxRenderDuration: Duration?

    /// Limits; the defaults suit marketing messages (kilobytes of output, a few loops).
    public init(
        maxOutputBytes: Int = 4 << 20, maxLoopIterations: Int = 1_000_000, maxRenderDepth: Int = 16,
        maxRenderDuration: Duration? = .seconds(2)
    ) {
        self.maxOutputBytes = maxOutputBytes
        self.maxLoopIterations = maxLoopIterations
        self.maxRenderDepth = maxRenderDepth
        self.maxRenderDuration = maxRenderDuration
    }

    /// No limits except a render depth of 64 (for trusted templates and tests).
    public static var unlimited: LiquidLimits {
        LiquidLimits(maxOutputBytes: .max, maxLoopIterations: .max, maxRenderDepth: 64, maxRenderDuration: nil)
    }
}
