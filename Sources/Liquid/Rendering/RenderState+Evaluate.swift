/// Expression evaluation with Ruby Liquid's lookup semantics.
extension RenderState {
    @inline(__always)
    mutating func evaluate(_ expression: FilteredExpression) throws(LiquidError) -> LiquidValue {
        let value = try evaluate(variableOf: expression)
        if expression.hasFilters { return try apply(expression.chain, to: value) }
        return value
    }

    /// The value of the expression before its filters.
    @inline(__always)
    func evaluate(variableOf expression: FilteredExpression) throws(LiquidError) -> LiquidValue {
        if expression.isVariable { return try resolve(expression.lookup, strict: missingVariables == .error) }
        return try evaluate(expression.expression)
    }

    /// A filter and the ones after it.
    mutating func apply(_ link: FilterLink, to input: LiquidValue) throws(LiquidError) -> LiquidValue {
        let value = try apply(link.call, to: input)
        guard let next = link.next else { return value }
        return try apply(next, to: value)
    }

    @inline(__always)
    func evaluate(_ expression: Expression) throws(LiquidError) -> LiquidValue {
        switch expression {
        case .literal(let v): return v
        case .variable(let lookup): return try resolve(lookup, strict: missingVariables == .error)
        case .range(let a, let b): return try evaluateRange(a, b)
        case .blank, .empty: return .string("")
        }
    }

    /// `(a..b)` (out of line: `evaluate` calling itself could not be inlined).
    @inline(never)
    func evaluateRange(_ a: Expression, _ b: Expression) throws(LiquidError) -> LiquidValue {
        .range(first: try RenderState.rangeInteger(evaluate(a)), last: try RenderState.rangeInteger(evaluate(b)))
    }

    func undefined(_ lookup: VariableLookup, strict: Bool) throws(LiquidError) -> LiquidValue {
        if strict { throw LiquidError(.undefinedVariable, "undefined variable \(lookup.path)") }
        return .nil
    }

    /// Ruby's `VariableLookup#evaluate`.
    func resolve(_ lookup: VariableLookup, strict: Bool) throws(LiquidError) -> LiquidValue {
        if let (rootKey, key) = lookup.simple {
            if let found = findProperty(lookup, rootKey, key) { return found }
            return try undefined(lookup, strict: strict)
        }
        var object: LiquidValue
        switch lookup.root {
        case .name(let key):
            guard let found = find(key) else { return try undefined(lookup, strict: strict) }
            object = found
        case .dynamic(let e):
            guard case .string(let name) = try evaluate(e), let found = find(Key(name)) else {
                return try undefined(lookup, strict: strict)
            }
            object = found
        }
        for segment in lookup.segments {
            let next: LiquidValue?
            switch segment {
            case .key(let key): next = RenderState.property(object, key)
            case .command(let key): next = RenderState.property(object, key) ?? RenderState.command(object, key.name)
            case .index(let i): next = RenderState.index(object, i)
            case .dynamic(let e):
                switch try evaluate(e) {
                case .string(let key): next = RenderState.property(object, Key(key))
                case .int(let i): next = RenderState.index(object, i)
                default: next = nil
                }
            }
            guard let next else { return try undefined(lookup, strict: strict) }
            object = next
        }
        return object
    }

    /// `property(object, key)`, trying position `guess` of an object first; `position` is set to where
    /// the key was found.
    @inline(__always)
    static func property(_ object: LiquidValue, _ key: Key, guess: Int, position: inout Int) -> LiquidValue? {
        switch object {
        case .object(let o):
            guard let i = o.index(of: key.name, hash: key.hash, guess: guess) else { return nil }
            position = i
            return o.value(at: i)
        case .drop(let box): return box.drop.property(key.name)
        default: return nil
        }
    }

    @inline(__always)
    static func property(_ object: LiquidValue, _ key: Key) -> LiquidValue? {
        switch object {
        case .object(let o): return o.value(forKey: key.name, hash: key.hash)
        case .drop(let box): return box.drop.property(key.name)
        default: return nil
        }
    }

    static func index(_ object: LiquidValue, _ i: Int) -> LiquidValue? {
        switch object {
        case .array(let a):
            let k = i < 0 ? i + a.count : i
            return k >= 0 && k < a.count ? a[k] : .nil
        case .drop(let box): return box.drop.property(String(i))
        default: return nil
        }
    }

    /// Ruby methods `size`, `first`, `last` when the object has no such key.
    static func command(_ object: LiquidValue, _ name: String) -> LiquidValue? {
        switch (object, name) {
        case (.array(let a), "size"): return .int(a.count)
        case (.array(let a), "first"): return a.first ?? .nil
        case (.array(let a), "last"): return a.last ?? .nil
        case (.object(let o), "size"): return .int(o.count)
        case (.object(let o), "first"):
            guard let key = o.orderedKeys.first, let value = o[key] else { return .nil }
            return .array([.string(key), value])
        case (.string(let s), "size"): return .int(s.unicodeScalars.count)
        case (.range(let f, let l), "size"): return .int(LoopSegment.rangeCount(f, l))
        case (.range(let f, _), "first"): return .int(f)
        case (.range(_, let l), "last"): return .int(l)
        case (.int, "size"): return .int(8)
        default: return nil
        }
    }

    @inline(__always)
    mutating func apply(_ filter: FilterCall, to input: LiquidValue) throws(LiquidError) -> LiquidValue {
        if let builtin = filter.builtin {
            let argc = filter.argc
            if filter.literalArguments {
                if let result = builtin.apply(input, argc, filter.literal0, filter.literal1, scratch: &textScratch, decimals: &decimals) { return result }
            } else {
                let a0 = argc > 0 ? try evaluate(filter.argument0) : .nil
                let a1 = argc > 1 ? try evaluate(filter.argument1) : .nil
                if let result = builtin.apply(input, argc, a0, a1, scratch: &textScratch, decimals: &decimals) { return result }
            }
        }
        return try applyGeneral(filter, to: input)
    }

    /// Prints an expression whose last filter is a built-in text filter, writing that filter's text straight
    /// into the output when its fast path applies.
    mutating func writeFiltered(_ expression: FilteredExpression, _ writer: BuiltinFilter) throws(LiquidError) {
        var input = try evaluate(variableOf: expression)
        guard expression.hasFilters else { return write(input) }
        if expression.hasLeading { input = try apply(expression.leading, to: input) }
        let last = expression.last
        let argc = last.argc
        if last.literalArguments {
            if writer.write(input, argc, last.literal0, last.literal1, to: &out) { return }
        } else {
            let a0 = argc > 0 ? try evaluate(last.argument0) : .nil
            let a1 = argc > 1 ? try evaluate(last.argument1) : .nil
            if writer.write(input, argc, a0, a1, to: &out) { return }
        }
        write(try applyGeneral(last, to: input))
    }

    /// A filter call through its function, with Ruby's arguments.
    mutating func applyGeneral(_ filter: FilterCall, to input: LiquidValue) throws(LiquidError) -> LiquidValue {
        guard let function = filter.function else { return input }
        if let constant = filter.constantArguments {
            return try call(function, input, constant)
        }
        // Reuse one buffer: filter arguments are plain expressions (no nested filter calls); a filter that
        // keeps the array only makes the next call copy it.
        var positional: [LiquidValue] = []
        swap(&positional, &argumentScratch)
        positional.removeAll(keepingCapacity: true)
        for p in filter.positional { positional.append(try evaluate(p)) }
        var keyword: [(name: String, value: LiquidValue)] = []
        if !filter.keyword.isEmpty {
            for k in filter.keyword { keyword.append((k.name, try evaluate(k.value))) }
        }
        let result = Result { () throws(LiquidError) -> LiquidValue in
            try call(function, input, LiquidFilterArguments(positional: positional, keyword: keyword))
        }
        swap(&positional, &argumentScratch)
        return try result.get()
    }

    @inline(__always)
    func call(_ function: LiquidFilterFunction, _ input: LiquidValue, _ arguments: LiquidFilterArguments) throws(LiquidError) -> LiquidValue {
        do {
            return try function(input, arguments, filterEnvironment)
        } catch {
            let code: LiquidError.Code
            switch error.code {
            case .argument: code = .argument
            case .zeroDivision: code = .zeroDivision
            default: code = .render
            }
            throw LiquidError(code, error.message)
        }
    }

    // MARK: Conditions

    func evaluate(_ condition: Condition) throws(LiquidError) -> Bool {
        try evaluate(condition.first)
    }

    /// A comparison and the ones after it.
    func evaluate(_ link: Condition.Link) throws(LiquidError) -> Bool {
        let result = try evaluate(link.comparison)
        guard let next = link.next else { return result }
        if link.and {
            if !result { return false }
        } else if result {
            return true
        }
        return try evaluate(next)
    }

    func evaluate(_ c: Condition.Comparison) throws(LiquidError) -> Bool {
        guard let op = c.op else { return try evaluate(c.left).isTruthy }
        switch op {
        case .equal: return try equalVariables(c.left, c.right)
        case .notEqual: return try !equalVariables(c.left, c.right)
        case .contains:
            if case .blank = c.left { return false }
            if case .empty = c.left { return false }
            return try evaluate(c.left).rubyContains(evaluate(c.right))
        case .less, .greater, .lessOrEqual, .greaterOrEqual:
            if c.left.isMethodLiteral || c.right.isMethodLiteral { return false }
            guard let order = try evaluate(c.left).rubyRelationalOrder(evaluate(c.right)) else { return false }
            switch op {
            case .less: return order < 0
            case .greater: return order > 0
            case .lessOrEqual: return order <= 0
            default: return order >= 0
            }
        case .unknown(let name):
            throw LiquidError(.argument, "Unknown operator \(name)")
        }
    }

    /// Ruby's `Condition#equal_variables`, with `blank` / `empty` as method literals.
    func equalVariables(_ left: Expression, _ right: Expression) throws(LiquidError) -> Bool {
        // On flags: a switch over the pair of expressions would copy both.
        switch (left.isMethodLiteral, right.isMethodLiteral) {
        case (true, true): return false
        case (true, false): return try left.isBlankLiteral ? evaluate(right).isBlank : evaluate(right).isEmptyCollection
        case (false, true): return try right.isBlankLiteral ? evaluate(left).isBlank : evaluate(left).isEmptyCollection
        case (false, false): return try evaluate(left).rubyEquals(evaluate(right))
        }
    }

    // MARK: Conversions

    /// Ruby's `RangeLookup#to_integer`.
    static func rangeInteger(_ value: LiquidValue) throws(LiquidError) -> Int {
        guard let i = rangeBound(value) else { throw LiquidError(.argument, "invalid integer") }
        return i
    }

    static func rangeBound(_ value: LiquidValue) -> Int? {
        switch value {
        case .int(let i): return i
        case .nil: return 0
        case .string(let s): return rubyToI(s)
        case .double(let d): return d.isFinite ? Int(d.rounded(.towardZero)) : nil
        default: return nil
        }
    }

    /// Ruby's `Utils.to_integer`: integers, and strings that are integers (`Integer(str)`).
    static func toInteger(_ value: LiquidValue) throws(LiquidError) -> Int {
        switch value {
        case .int(let i): return i
        case .string(let s):
            var t = Substring(s)
            while let f = t.first, f == " " || f == "\t" || f == "\n" { t = t.dropFirst() }
            while let l = t.last, l == " " || l == "\t" || l == "\n" { t = t.dropLast() }
            if let i = Int(t.replacing("_", with: "")), !t.hasPrefix("_") { return i }
        case .double(let d):
            // Newer Liquid accepts floats here (golden-liquid: `cols:2.6`).
            if d.isFinite { return Int(d.rounded(.towardZero)) }
        default: break
        }
        throw LiquidError(.argument, "invalid integer")
    }

    /// Ruby's `to_i` (tablerow attributes): lenient.
    static func rubyToIValue(_ value: LiquidValue) throws(LiquidError) -> Int {
        switch value {
        case .int(let i): return i
        case .double(let d): return d.isFinite ? Int(d.rounded(.towardZero)) : 0
        case .string(let s): return rubyToI(s)
        case .nil: return 0
        default: throw LiquidError(.argument, "invalid integer")
        }
    }

    /// Ruby's `String#to_i`.
    static func rubyToI(_ s: String) -> Int {
        var it = s.utf8.makeIterator()
        var c = it.next()
        while let b = c, TemplateLexer.isSpace(b) { c = it.next() }
        var negative = false
        if c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
            negative = c == UInt8(ascii: "-")
            c = it.next()
        }
        var value = 0
        var lastUnderscore = false
        while let b = c {
            if b >= 0x30, b <= 0x39 {
                value = value &* 10 &+ Int(b - 0x30)
                lastUnderscore = false
            } else if b == UInt8(ascii: "_"), !lastUnderscore {
                lastUnderscore = true
            } else {
                break
            }
            c = it.next()
        }
        return negative ? -value : value
    }
}
