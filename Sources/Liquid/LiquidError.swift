/// An error from parsing or rendering a Liquid template.
///
/// `code` says what kind of error it is; `message` is the human-readable text (for syntax errors it says what
/// was expected). Syntax errors carry the template name, line and column (1-based) of the offending tag or
/// output. Messages never contain values from the render context.
public struct LiquidError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of error.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let raw: String
        init(_ raw: String) { self.raw = raw }
        /// The template source is not valid Liquid (Ruby's `Liquid::SyntaxError`).
        public static let syntax = Code("syntax")
        /// A variable or attribute is undefined and the render asked for strictness (strict variables or
        /// the missing-attribute policy `.error`).
        public static let undefinedVariable = Code("undefined_variable")
        /// A filter is unknown and strict filters are on.
        public static let undefinedFilter = Code("undefined_filter")
        /// A wrong argument at render time (Ruby's `Liquid::ArgumentError`), e.g. a bad `limit` or a
        /// comparison of a string with a number, or a filter argument error.
        public static let argument = Code("argument")
        /// Division or modulo by zero in a filter.
        public static let zeroDivision = Code("zero_division")
        /// Another render-time error (e.g. a filter refusing its input).
        public static let render = Code("render")
        /// `include` / `render` named a template the file system does not have, or there is no file system.
        public static let templateNotFound = Code("template_not_found")
        /// The output grew past ``LiquidLimits/maxOutputBytes``.
        public static let outputLimitExceeded = Code("output_limit_exceeded")
        /// Loops ran more iterations in total than ``LiquidLimits/maxLoopIterations``.
        public static let loopLimitExceeded = Code("loop_limit_exceeded")
        /// `include` / `render` nested deeper than ``LiquidLimits/maxRenderDepth``.
        public static let depthLimitExceeded = Code("depth_limit_exceeded")
        /// The render took longer than ``LiquidLimits/maxRenderDuration``.
        public static let timeLimitExceeded = Code("time_limit_exceeded")
        /// The template executed `{% abort_message %}` (our extension): `message` is the reason.
        public static let aborted = Code("aborted")
        /// Invalid JSON given to ``LiquidJSON``.
        public static let json = Code("json")
        /// Reading a template file failed.
        public static let fileSystem = Code("file_system")
        public var description: String { raw }
    }

    /// The kind of error.
    public var code: Code
    /// What went wrong (for a syntax error: what was expected); for `.aborted` the template's reason.
    public var message: String
    /// The template the error is in, when known.
    public var templateName: String?
    /// The 1-based line of the offending tag or output, when known.
    public var line: Int?
    /// The 1-based column (in characters) of the offending tag or output, when known.
    public var column: Int?

    /// An error.
    public init(_ code: Code, _ message: String, templateName: String? = nil, line: Int? = nil, column: Int? = nil) {
        self.code = code
        self.message = message
        self.templateName = templateName
        self.line = line
        self.column = column
    }

    /// `Liquid syntax error (email/welcome, line 3, column 5): ...`, Ruby-style text with the location.
    public var description: String {
        var head: String
        switch code {
        case .syntax: head = "Liquid syntax error"
        case .aborted: head = "Liquid render aborted"
        default: head = "Liquid error"
        }
        var location: [String] = []
        if let templateName { location.append(templateName) }
        if let line { location.append("line \(line)") }
        if let column { location.append("column \(column)") }
        if !location.isEmpty { head += " (" + location.joined(separator: ", ") + ")" }
        return head + ": " + message
    }

    /// The text lax rendering writes in place of a failed node: `Liquid error: <message>`.
    var inlineText: String { (code == .syntax ? "Liquid syntax error: " : "Liquid error: ") + message }

    /// Errors that stop a render whatever the error mode (limits, abort, strictness the caller asked for).
    var isFatal: Bool {
        switch code {
        case .outputLimitExceeded, .loopLimitExceeded, .depthLimitExceeded, .timeLimitExceeded, .aborted,
            .undefinedVariable, .undefinedFilter:
            true
        default: false
        }
    }
}
