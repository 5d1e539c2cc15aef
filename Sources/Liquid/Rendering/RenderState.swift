#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The mutable state of one render: the output buffer, variable scopes, registers (cycle, for offsets,
/// ifchanged), counters for limits. Passed `inout` through the node tree; never shared (not copyable).
struct RenderState: ~Copyable {
    /// The output (UTF-8).
    var out: OutputBuffer
    /// Block scopes (`for`, `tablerow`, `include` arguments): innermost last.
    var locals: [Binding] = []
    /// The template scope `assign` and `capture` write (Ruby's `scopes.last`).
    var root: [Binding] = []
    /// Reused positional-argument buffer for filter calls (no allocation per call).
    var argumentScratch: [LiquidValue] = []
    /// Reused byte buffer for built-in text filters whose result is a value (not written out directly).
    var textScratch = OutputBuffer(capacity: 0)
    /// Doubles read as decimals by the built-in math filters and the output.
    var decimals = ShortDecimalCache()
    /// The render environment (Ruby's `environments.first`; `increment` / `decrement` write it).
    var globals: LiquidObject
    var cycles = SmallMap<LiquidValue>()
    var forOffsets = SmallMap<String>()
    /// Whether `forOffsets` is kept (the template may read it, ``Parser/continuesLoops``).
    let recordsForOffsets: Bool
    var ifchanged: String?
    /// The innermost `for` loop's `forloop` (the parent of a nested loop's).
    var forloop: ForloopDrop?
    /// 0: none, 1: break, 2: continue.
    var interrupt: UInt8 = 0
    var iterations = 0
    var depth = 0
    let limits: LiquidLimits
    let raiseErrors: Bool
    let missingVariables: LiquidRenderOptions.MissingVariablePolicy
    let fileSystem: (any LiquidFileSystem)?
    let filterEnvironment: LiquidFilterEnvironment
    let deadline: ContinuousClock.Instant?
    let parseOptions: LiquidParseOptions
    var partials: [String: LiquidTemplate] = [:]

    init(
        globals: LiquidObject, options: LiquidRenderOptions, parseOptions: LiquidParseOptions,
        output: consuming OutputBuffer, recordsForOffsets: Bool
    ) {
        self.recordsForOffsets = recordsForOffsets
        out = output
        locals.reserveCapacity(4)
        self.globals = globals
        limits = options.limits
        raiseErrors = (options.errorMode ?? (parseOptions.errorMode == .strict ? .raise : .inline)) == .raise
        missingVariables = options.missingVariables
        fileSystem = options.fileSystem
        filterEnvironment = LiquidFilterEnvironment(
            now: options.now ?? RenderState.wallClockNow(), utcOffset: options.utcOffset)
        deadline = options.limits.maxRenderDuration.map { ContinuousClock.now.advanced(by: $0) }
        self.parseOptions = parseOptions
    }

    static func wallClockNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    // MARK: Scopes

    @inline(__always)
    func find(_ key: Key) -> LiquidValue? {
        let hash = key.hash
        var i = locals.count
        while i > 0 {
            i -= 1
            if locals[i].key.hash == hash, locals[i].key.name == key.name { return locals[i].value }
        }
        for i in root.indices where root[i].key.hash == hash && root[i].key.name == key.name { return root[i].value }
        return globals.value(forKey: key.name, hash: hash)
    }

    /// `find(rootKey)` then its property `key` (the shape of `lookup.simple`), without copying the
    /// intermediate value, trying the positions the lookup remembers first (and remembering new ones).
    @inline(__always)
    func findProperty(_ lookup: VariableLookup, _ rootKey: Key, _ key: Key) -> LiquidValue? {
        // The hints are read before and written after the search (no atomic access while values are
        // borrowed from the scopes, which would make the compiler retain them).
        let rootGuess = lookup.rootHint.position
        let keyGuess = lookup.keyHint.position
        var rootPosition = rootGuess
        var keyPosition = keyGuess
        let found = findProperty(rootKey, key, rootGuess, keyGuess, &rootPosition, &keyPosition)
        if rootPosition != rootGuess { lookup.rootHint.remember(rootPosition) }
        if keyPosition != keyGuess { lookup.keyHint.remember(keyPosition) }
        return found
    }

    @inline(__always)
    private func findProperty(
        _ rootKey: Key, _ key: Key, _ rootGuess: Int, _ keyGuess: Int, _ rootPosition: inout Int, _ keyPosition: inout Int
    ) -> LiquidValue? {
        let hash = rootKey.hash
        var i = locals.count
        while i > 0 {
            i -= 1
            if locals[i].key.hash == hash, locals[i].key.name == rootKey.name {
                return RenderState.property(locals[i].value, key, guess: keyGuess, position: &keyPosition)
            }
        }
        for i in root.indices where root[i].key.hash == hash && root[i].key.name == rootKey.name {
            return RenderState.property(root[i].value, key, guess: keyGuess, position: &keyPosition)
        }
        guard let index = globals.index(of: rootKey.name, hash: hash, guess: rootGuess) else { return nil }
        rootPosition = index
        return globals.s.withEntries { RenderState.property($0[index].value, key, guess: keyGuess, position: &keyPosition) }
    }

    /// Ruby's `context.scopes.last[name] = value`.
    mutating func assign(_ key: Key, _ value: LiquidValue) {
        for i in root.indices where root[i].key.hash == key.hash && root[i].key.name == key.name {
            root[i].value = value
            return
        }
        root.append(Binding(key: key, value: value))
    }

    // MARK: Limits

    mutating func countIteration() throws(LiquidError) {
        iterations &+= 1
        if iterations > limits.maxLoopIterations {
            throw LiquidError(.loopLimitExceeded, "more than \(limits.maxLoopIterations) loop iterations")
        }
        if iterations & 255 == 0 { try checkDeadline() }
    }

    func checkDeadline() throws(LiquidError) {
        if let deadline, ContinuousClock.now > deadline {
            throw LiquidError(.timeLimitExceeded, "render took longer than \(limits.maxRenderDuration!)")
        }
    }

    func checkSize(_ count: Int) throws(LiquidError) {
        if count > limits.maxOutputBytes {
            throw LiquidError(.outputLimitExceeded, "output larger than \(limits.maxOutputBytes) bytes")
        }
    }

    // MARK: Output

    @inline(__always)
    mutating func write(_ value: LiquidValue) {
        switch value {
        case .string(let s): BuiltinFilter.bytes(s) { out.append(contentsOf: $0) }
        case .int(let i): writeInt(i)
        case .nil: break
        case .double(let d): writeDouble(d)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        default: out.append(contentsOf: value.rubyString.utf8)
        }
    }

    mutating func writeInt(_ value: Int) {
        if value >= 0, value < 10 {
            out.append(UInt8(truncatingIfNeeded: value) &+ 0x30)
            return
        }
        if value == .min {
            out.append(contentsOf: String(value).utf8)
            return
        }
        var v = value.magnitude
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var digits = 1
        var rest = v / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        out.append(upTo: digits) { buf in
            var i = digits
            while i > 0 {
                i -= 1
                buf[i] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
                v /= 10
            }
            return digits
        }
    }

    mutating func writeDouble(_ d: Double) {
        if ShortDecimal.appendRubyFloat(d, to: &out, &decimals) { return }
        out.append(contentsOf: LiquidValue.rubyFloatString(d).utf8)
    }

    // MARK: Rendering

    mutating func render(_ block: Block) throws(LiquidError) {
        for node in block.refs {
            do throws(LiquidError) {
                try renderNode(node)
            } catch {
                if raiseErrors || error.isFatal { throw error }
                if node.printsErrors { out.append(contentsOf: error.inlineText.utf8) }
            }
            if interrupt != 0 { return }
        }
        try checkSize(out.count)
    }

    @inline(__always)
    mutating func renderNode(_ node: NodeRef) throws(LiquidError) {
        switch node.kind {
        case .text: try node.with(TextNode.self) { out.append(contentsOf: $0.bytes) }
        case .output: try node.with(FilteredExpression.self) { (e) throws(LiquidError) in try output(e) }
        case .assign: try node.with(AssignTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .capture: try node.with(CaptureTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .conditional: try node.with(IfTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .caseTag: try node.with(CaseTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .forLoop: try node.with(ForTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .tablerow: try node.with(TablerowTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .cycle: try node.with(CycleTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .counter: try node.with(CounterTag.self) { tag in tag.render(&self) }
        case .ifchanged: try node.with(IfchangedTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .include: try node.with(IncludeTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .render: try node.with(RenderTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        case .breakLoop: interrupt = 1
        case .continueLoop: interrupt = 2
        case .abort: try node.with(AbortMessageTag.self) { (tag) throws(LiquidError) in try tag.render(&self) }
        }
    }

    /// `{{ expression }}`: the value printed, or the last filter's text written straight into the output.
    @inline(__always)
    mutating func output(_ expression: FilteredExpression) throws(LiquidError) {
        if let writer = expression.lastWriter {
            try writeFiltered(expression, writer)
            return
        }
        let value: LiquidValue
        if missingVariables == .errorInOutput, expression.isBareLookup,
            case .variable(let lookup) = expression.expression
        {
            value = try resolve(lookup, strict: true)
        } else {
            value = try evaluate(expression)
        }
        write(value)
    }

    /// Renders nodes into a fresh buffer and returns it as a string (capture, ifchanged).
    mutating func capture(_ nodes: Block) throws(LiquidError) -> String {
        var saved = OutputBuffer(capacity: 256)
        swap(&saved, &out)
        defer { swap(&saved, &out) }
        try render(nodes)
        return out.string
    }
}
