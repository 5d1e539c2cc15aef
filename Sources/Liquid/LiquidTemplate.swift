/// A compiled Liquid template: parse once, render many times, from many tasks at once (it is an immutable
/// `Sendable` value).
///
/// ```swift
/// let template = try LiquidTemplate("Hi {{ profile.first_name | default: 'there' }}!")
/// let text = try template.render(["profile": ["first_name": "Ada"]])
/// ```
///
/// Filters are resolved when parsing (``LiquidFilters/standard`` plus ``LiquidParseOptions/filters``).
/// Rendering follows Ruby's `Template#render`: render errors print `Liquid error: ...` inline for lax
/// templates; see ``LiquidRenderOptions`` for strict rendering, limits and the missing-variable policy.
public struct LiquidTemplate: Sendable {
    let nodes: Block
    /// The template's name (used in error messages), if given.
    public let name: String?
    /// The options it was parsed with (partials it includes are parsed with the same).
    public let parseOptions: LiquidParseOptions
    let capacityHint: Int
    /// ``Parser/continuesLoops``.
    let continuesLoops: Bool

    /// Parses `source`. Throws a ``LiquidError`` with code `.syntax`, naming `name`, line and column.
    public init(_ source: String, name: String? = nil, options: LiquidParseOptions = LiquidParseOptions()) throws(LiquidError) {
        var parser = Parser(source: source, name: name, options: options)
        nodes = Block(try parser.parseDocument())
        continuesLoops = parser.continuesLoops
        self.name = name
        parseOptions = options
        capacityHint = max(256, source.utf8.count + source.utf8.count / 2)
    }

    /// Renders with `environment` as the top-level variables.
    /// - Throws: ``LiquidError``: `.aborted` (with the reason as `message`) when the template runs
    ///   `{% abort_message %}`, a limit code when a limit is exceeded, `.undefinedVariable` under a strict
    ///   missing-variable policy, any render error when the error mode is `.raise`.
    public func render(
        _ environment: [String: LiquidValue] = [:], options: LiquidRenderOptions = LiquidRenderOptions()
    ) throws(LiquidError) -> String {
        let bytes = try renderBytes(environment, options: options)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Renders with the keys of `environment` as the top-level variables.
    public func render(_ environment: LiquidObject, options: LiquidRenderOptions = LiquidRenderOptions()) throws(LiquidError) -> String {
        let bytes = try renderBytes(environment, options: options)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Renders into UTF-8 bytes (avoids a final copy when the caller writes bytes anyway).
    public func renderBytes(
        _ environment: [String: LiquidValue] = [:], options: LiquidRenderOptions = LiquidRenderOptions()
    ) throws(LiquidError) -> [UInt8] {
        var globals = LiquidObject()
        for (k, v) in environment { globals[k] = v }
        return try renderBytes(globals, options: options)
    }

    /// Renders into UTF-8 bytes with the keys of `environment` as the top-level variables (the fastest
    /// entry point: the environment is used as is).
    public func renderBytes(_ environment: LiquidObject, options: LiquidRenderOptions = LiquidRenderOptions()) throws(LiquidError) -> [UInt8] {
        // The output goes straight into the result's storage; only an output larger than the estimate is
        // copied out of the memory it grew into.
        var failure: LiquidError?
        var grown: [UInt8]?
        let bytes = [UInt8](unsafeUninitializedCapacity: capacityHint) { memory, initialized in
            var state = RenderState(
                globals: environment, options: options, parseOptions: parseOptions,
                output: OutputBuffer(writingInto: memory), recordsForOffsets: continuesLoops)
            do throws(LiquidError) {
                try state.render(nodes)
            } catch {
                failure = error
                return
            }
            if state.out.isInGivenMemory {
                initialized = state.out.count
            } else {
                grown = state.out.bytes
            }
        }
        if var e = failure {
            if e.templateName == nil { e.templateName = name }
            throw e
        }
        return grown ?? bytes
    }

    /// Renders, returning `{% abort_message %}` as a distinct outcome instead of an error.
    public func evaluate(
        _ environment: [String: LiquidValue] = [:], options: LiquidRenderOptions = LiquidRenderOptions()
    ) throws(LiquidError) -> LiquidRenderResult {
        do {
            return .rendered(try render(environment, options: options))
        } catch where error.code == .aborted {
            return .aborted(reason: error.message)
        }
    }
}

/// The outcome of ``LiquidTemplate/evaluate(_:options:)``.
public enum LiquidRenderResult: Sendable, Hashable {
    /// The rendered text.
    case rendered(String)
    /// The template ran `{% abort_message reason %}` (our extension): the message should not be sent.
    case aborted(reason: String)
}
