/// The array filters. Their input goes through Ruby Liquid's `InputIterator` (`inputIterator`): arrays are
/// flattened, a hash is a one-element array, a range its integers, nil empty, anything else one element.
/// Property lookups are Ruby's `item[property]` (`rubyIndex`): a string item matches a substring, an integer
/// item indexed by a string raises "cannot select the property", and an item without `[]` (nil, a boolean,
/// a float) makes `where`/`reject`/`find`/`uniq`/`compact` return nil, as in Ruby Liquid.
enum ArrayFilters {
    static let all: [String: LiquidFilterFunction] = [
        "size": size, "first": first, "last": last, "join": join, "concat": concat, "reverse": reverse,
        "sort": sort, "sort_natural": sortNatural, "uniq": uniq, "compact": compact, "map": map, "sum": sum,
        "where": whereFilter, "reject": reject, "has": has, "find": find, "find_index": findIndex,
        "default": defaultFilter,
    ]

    /// `size`: characters of a string, elements of an array, keys of a hash, integers of a range; 8 for an
    /// integer (Ruby's `Integer#size`, its byte width); 0 otherwise.
    static let size: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        switch input {
        case .string(let s): return .int(StringFilters.characterCount(s))
        case .array(let a): return .int(a.count)
        case .object(let o): return .int(o.count)
        case .range(let f, let l):
            if l < f { return .int(0) }
            let (span, o) = l.subtractingReportingOverflow(f)
            return o || span == .max ? .double(Double(l) - Double(f) + 1) : .int(span + 1)
        case .int: return .int(8)
        default: return .int(0)
        }
    }

    /// `first`: the first element of an array or range; a hash's first `[key, value]` pair; else nil.
    static let first: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        switch input {
        case .array(let a): return a.first ?? .nil
        case .object(let o):
            guard let key = o.orderedKeys.first else { return .nil }
            return .array([.string(key), o[key] ?? .nil])
        case .range(let f, _): return .int(f)
        default: return .nil
        }
    }

    /// `last`: the last element of an array or range; else nil (a hash has no `last` in Ruby).
    static let last: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        switch input {
        case .array(let a): return a.last ?? .nil
        case .range(_, let l): return .int(l)
        default: return .nil
        }
    }

    /// `join: glue = " "`: the elements' `to_s` joined.
    static let join: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 0, max: 1)
        let glue = args[0].map { $0.rubyToS } ?? " "
        let items = try inputIterator(input)
        var out = ""
        var first = true
        for item in items {
            if !first { out += glue }
            first = false
            out += item.rubyToS
        }
        return .string(out)
    }

    /// `concat: array`: the input's elements followed by the argument's; the argument must be an array.
    static let concat: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        guard case .array(let other) = args.value(0) else {
            throw LiquidFilterError(.argument, "concat filter requires an array argument")
        }
        return .array(try inputIterator(input) + other)
    }

    /// `reverse`.
    static let reverse: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try expectNoArguments(arguments)
        return .array(try inputIterator(input).reversed())
    }

    /// Whether Ruby's item responds to `[]`.
    static func indexable(_ v: LiquidValue) -> Bool {
        switch v {
        case .object, .drop, .string, .int, .array: true
        default: false
        }
    }

    /// Sorts with a comparator that may raise (the first error is rethrown after sorting).
    static func sorted(
        _ items: [LiquidValue], keys: [LiquidValue],
        _ compare: (LiquidValue, LiquidValue) throws(LiquidFilterError) -> Int
    ) throws(LiquidFilterError) -> [LiquidValue] {
        var failure: LiquidFilterError?
        let order = items.indices.sorted { i, j in
            if failure != nil { return false }
            do {
                return try compare(keys[i], keys[j]) < 0
            } catch let error as LiquidFilterError {
                failure = error
                return false
            } catch {
                return false
            }
        }
        if let failure { throw failure }
        return order.map { items[$0] }
    }

    /// Ruby Liquid's `nil_safe_compare`: `<=>`, nil last, incomparable values raise.
    static func nilSafeCompare(_ a: LiquidValue, _ b: LiquidValue) throws(LiquidFilterError) -> Int {
        if let c = rubyCompare(a, b) { return c }
        if case .nil = a { return 1 }
        if case .nil = b { return -1 }
        throw LiquidFilterError(.argument, "cannot sort values of incompatible types")
    }

    /// Ruby Liquid's `nil_safe_casecmp`: `to_s` compared ignoring ASCII case, nil last.
    static func nilSafeCaseCompare(_ a: LiquidValue, _ b: LiquidValue) -> Int {
        switch (a, b) {
        case (.nil, .nil): return 0
        case (.nil, _): return 1
        case (_, .nil): return -1
        default: return caseCompareBytes(a.rubyToS, b.rubyToS)
        }
    }

    /// The values `item[property]` for sorting by a property; nil when some item has no `[]`.
    static func propertyKeys(_ items: [LiquidValue], _ property: LiquidValue) throws(LiquidFilterError) -> [LiquidValue]? {
        guard items.allSatisfy(indexable) else { return nil }
        var keys: [LiquidValue] = []
        keys.reserveCapacity(items.count)
        for item in items {
            if case .value(let v) = try rubyIndex(item, property) { keys.append(v) } else { keys.append(.nil) }
        }
        return keys
    }

    /// `sort: property = nil`: Ruby's `<=>` order (case-sensitive strings, numbers), nil last; by
    /// `item[property]` when given.
    static let sort: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 0, max: 1)
        let items = try inputIterator(input)
        if items.isEmpty { return .array([]) }
        let property = args.value(0)
        if case .nil = property { return .array(try sorted(items, keys: items, nilSafeCompare)) }
        guard let keys = try propertyKeys(items, property) else { return .nil }
        return .array(try sorted(items, keys: keys, nilSafeCompare))
    }

    /// `sort_natural: property = nil`: case-insensitive order of `to_s`, nil last.
    static let sortNatural: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 0, max: 1)
        let items = try inputIterator(input)
        if items.isEmpty { return .array([]) }
        let property = args.value(0)
        let keys: [LiquidValue]
        if case .nil = property {
            keys = items
        } else {
            guard let k = try propertyKeys(items, property) else { return .nil }
            keys = k
        }
        // Precompute the strings once.
        let strings = keys.map { key -> String? in
            if case .nil = key { return nil }
            return key.rubyToS
        }
        let order = items.indices.sorted { i, j in
            switch (strings[i], strings[j]) {
            case (nil, _): return false
            case (_, nil): return true
            case (let x?, let y?): return caseCompareBytes(x, y) < 0
            }
        }
        return .array(order.map { items[$0] })
    }

    /// `uniq: property = nil`: the first of each run of equal (`eql?`) elements, or of equal
    /// `item[property]`.
    static let uniq: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 0, max: 1)
        let items = try inputIterator(input)
        let property = args.value(0)
        var seen = Set<LiquidValue>()
        var out: [LiquidValue] = []
        if case .nil = property {
            for item in items where seen.insert(item).inserted { out.append(item) }
            return .array(out)
        }
        for item in items {
            guard case .value(let key) = try rubyIndex(item, property) else { return .nil }
            if seen.insert(key).inserted { out.append(item) }
        }
        return .array(out)
    }

    /// `compact: property = nil`: nil elements (or elements whose `item[property]` is nil) removed.
    static let compact: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 0, max: 1)
        let items = try inputIterator(input)
        let property = args.value(0)
        if case .nil = property {
            return .array(items.filter { if case .nil = $0 { false } else { true } })
        }
        var out: [LiquidValue] = []
        for item in items {
            guard case .value(let v) = try rubyIndex(item, property) else { return .nil }
            if case .nil = v { continue }
            out.append(item)
        }
        return .array(out)
    }

    /// `map: property`: `item[property]` of each element (nil for elements without `[]`).
    static let map: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 1, max: 1)
        let items = try inputIterator(input)
        let property = args.value(0)
        if case .string("to_liquid") = property { return .array(items) }
        var out: [LiquidValue] = []
        out.reserveCapacity(items.count)
        for item in items {
            if case .value(let v) = try rubyIndex(item, property) { out.append(v) } else { out.append(.nil) }
        }
        return .array(out)
    }

    /// `sum: property = nil`: the sum of `to_number` of the elements (or of `item[property]`).
    static let sum: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        let args = try FilterArgs(arguments, min: 0, max: 1)
        let items = try inputIterator(input)
        if items.isEmpty { return .int(0) }
        let property = args.value(0)
        var values: [LiquidValue] = []
        if case .nil = property {
            values = items
        } else {
            values.reserveCapacity(items.count)
            for item in items {
                if indexable(item), case .value(let v) = try rubyIndex(item, property) {
                    values.append(v)
                } else {
                    values.append(.int(0))
                }
            }
        }
        var total = RubyNumber.int(0)
        for value in try inputIterator(.array(values)) { total = total + value.rubyNumber }
        return total.liquidValue
    }

    enum FilterMode { case select, reject, any, find, findIndex }

    /// Ruby Liquid's `filter_array` behind `where`, `reject`, `has`, `find` and `find_index`: an element
    /// matches when `item[property]` is truthy (no target given) or `== target`.
    static func filterArray(
        _ input: LiquidValue, _ arguments: LiquidFilterArguments, _ mode: FilterMode
    ) throws(LiquidFilterError) -> LiquidValue {
        let args = try FilterArgs(arguments, min: 1, max: 2)
        let items = try inputIterator(input)
        if items.isEmpty {
            switch mode {
            case .select, .reject: return .array([])
            case .any: return .bool(false)
            case .find, .findIndex: return .nil
            }
        }
        // An undefined property selects by the empty name (golden-liquid: `reject: nosuchthing` over strings
        // rejects every element, as `"x"[""]` is `""`, which is truthy).
        var property = args.value(0)
        if case .nil = property { property = .string("") }
        let target = args.value(1)
        var out: [LiquidValue] = []
        for (index, item) in items.enumerated() {
            guard case .value(let v) = try rubyIndex(item, property) else { return .nil }
            let matches: Bool
            if case .nil = target { matches = v.isTruthy } else { matches = rubyEqual(v, target) }
            switch mode {
            case .select: if matches { out.append(item) }
            case .reject: if !matches { out.append(item) }
            case .any: if matches { return .bool(true) }
            case .find: if matches { return item }
            case .findIndex: if matches { return .int(index) }
            }
        }
        switch mode {
        case .select, .reject: return .array(out)
        case .any: return .bool(false)
        case .find, .findIndex: return .nil
        }
    }

    /// `where: property, value = nil`: the elements whose property is truthy / equals `value`.
    static let whereFilter: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try filterArray(input, arguments, .select)
    }

    /// `reject: property, value = nil`: the elements `where` would not keep.
    static let reject: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try filterArray(input, arguments, .reject)
    }

    /// `has: property, value = nil`: whether some element matches.
    static let has: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try filterArray(input, arguments, .any)
    }

    /// `find: property, value = nil`: the first matching element, or nil.
    static let find: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try filterArray(input, arguments, .find)
    }

    /// `find_index: property, value = nil`: the index of the first matching element, or nil.
    static let findIndex: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        try filterArray(input, arguments, .findIndex)
    }

    /// `default: value = '', allow_false: false`: `value` when the input is nil, false (unless
    /// `allow_false`), or empty (string, array, hash); else the input.
    static let defaultFilter: LiquidFilterFunction = { input, arguments, _ throws(LiquidFilterError) in
        // Fast path: the common `default: x` with a truthy non-empty input.
        if arguments.keyword.isEmpty && arguments.positional.count <= 2 {
            switch input {
            case .string(let s) where !s.isEmpty: return input
            case .int, .double, .range, .drop: return input
            case .bool(true): return input
            default: break
            }
        }
        let args = try FilterArgs(arguments, min: 0, max: 2)
        let fallback = args[0] ?? .string("")
        var allowFalse = false
        if case .object(let options) = args[1] ?? .nil { allowFalse = options["allow_false"]?.isTruthy ?? false }
        let useDefault: Bool
        switch input {
        case .nil: useDefault = true
        case .bool(let b): useDefault = !b && !allowFalse
        case .string(let s): useDefault = s.isEmpty
        case .array(let a): useDefault = a.isEmpty
        case .object(let o): useDefault = o.count == 0
        default: useDefault = false
        }
        return useDefault ? fallback : input
    }
}
