/// Ruby's `Liquid::ForloopDrop`: `forloop.index`, `index0`, `rindex`, `rindex0`, `first`, `last`,
/// `length`, `name`, `parentloop`.
///
/// It is mutated as the loop advances; it lives inside one render (one task) only, which is why the
/// unchecked `Sendable` conformance is sound.
final class ForloopDrop: LiquidDrop, @unchecked Sendable {
    let name: String
    let length: Int
    let parent: LiquidDropBox?
    var index = 0

    init(name: String, length: Int, parent: LiquidDropBox?) {
        self.name = name
        self.length = length
        self.parent = parent
    }

    func property(_ key: String) -> LiquidValue {
        switch key {
        case "index": .int(index + 1)
        case "index0": .int(index)
        case "rindex": .int(length - index)
        case "rindex0": .int(length - index - 1)
        case "first": .bool(index == 0)
        case "last": .bool(index == length - 1)
        case "length": .int(length)
        case "name": .string(name)
        case "parentloop": parent.map { .drop($0) } ?? .nil
        default: .nil
        }
    }

    var displayString: String { "Liquid::ForloopDrop" }
}

/// Ruby's `Liquid::TablerowloopDrop`: the forloop properties plus `col`, `col0`, `col_first`, `col_last`,
/// `row`. Lives inside one render only (see ``ForloopDrop``).
final class TablerowloopDrop: LiquidDrop, @unchecked Sendable {
    let length: Int
    let cols: Int
    var index = 0
    var row = 1
    var col = 1

    init(length: Int, cols: Int) {
        self.length = length
        self.cols = cols
    }

    func increment() {
        index += 1
        if col == cols {
            col = 1
            row += 1
        } else {
            col += 1
        }
    }

    func property(_ key: String) -> LiquidValue {
        switch key {
        case "index": .int(index + 1)
        case "index0": .int(index)
        case "rindex": .int(length - index)
        case "rindex0": .int(length - index - 1)
        case "first": .bool(index == 0)
        case "last": .bool(index == length - 1)
        case "length": .int(length)
        case "col": .int(col)
        case "col0": .int(col - 1)
        case "col_first": .bool(col == 1)
        case "col_last": .bool(col == cols)
        case "row": .int(row)
        default: .nil
        }
    }

    var displayString: String { "Liquid::TablerowloopDrop" }
}
