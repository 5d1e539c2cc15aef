/// The arguments a filter is called with: `{{ x | name: a, b, key: c }}` gives positional `[a, b]` and
/// keyword `[("key", c)]`.
public struct LiquidFilterArguments: Sendable {
    /// Positional arguments in order.
    public var positional: [LiquidValue]
    /// Keyword arguments in order.
    public var keyword: [(name: String, value: LiquidValue)]

    /// Arguments from their parts.
    public init(positional: [LiquidValue] = [], keyword: [(name: String, value: LiquidValue)] = []) {
        self.positional = positional
        self.keyword = keyword
    }

    /// The keyword argument `name`, if given.
    public func keyword(_ name: String) -> LiquidValue? {
        keyword.first { $0.name == name }?.value
    }
}

/// What a filter may need from the render besides its input and arguments.
public struct LiquidFilterEnvironment: Sendable {
    /// The instant `date` treats as "now" / "today" (seconds since 1970, UTC). Fixed per render.
    public var now: Double
    /// Seconds east of UTC of the zone `date` formats in when its input carries no zone (Ruby uses the
    /// host's local zone; the fleet passes the person's or UTC).
    public var utcOffset: Int
    /// The name `%Z` prints for that zone (Ruby prints the host zone's abbreviation); nil means "UTC" when
    /// `utcOffset` is 0, else empty.
    public var zoneName: String?

    /// An environment.
    public init(now: Double, utcOffset: Int = 0, zoneName: String? = nil) {
        self.now = now
        self.utcOffset = utcOffset
        self.zoneName = zoneName
    }

    /// The zone name `%Z` prints for local times.
    var localZoneName: String { zoneName ?? (utcOffset == 0 ? "UTC" : "") }
}

/// A filter: input, arguments, environment to output; throws `LiquidFilterError` as Ruby raises
/// `Liquid::ArgumentError` / `Liquid::ZeroDivisionError` (e.g. wrong argument count, divide by zero).
public typealias LiquidFilterFunction =
    @Sendable (LiquidValue, LiquidFilterArguments, LiquidFilterEnvironment) throws(LiquidFilterError) -> LiquidValue

/// An error raised by a filter. `message` is Ruby's message text (lax rendering prints
/// `Liquid error: <message>` in place of the output, as Shopify does).
public struct LiquidFilterError: Error, Sendable, Hashable {
    /// What kind of error.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let raw: String
        /// Wrong number or type of arguments (Ruby's `Liquid::ArgumentError`).
        public static let argument = Code(raw: "argument")
        /// Division or modulo by zero (Ruby's `Liquid::ZeroDivisionError`).
        public static let zeroDivision = Code(raw: "zero_division")
        /// Anything else a filter refuses (Ruby's `Liquid::Error` subclasses).
        public static let invalid = Code(raw: "invalid")
        public var description: String { raw }
    }

    /// The kind of error.
    public var code: Code
    /// Ruby's message text.
    public var message: String

    /// An error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}
