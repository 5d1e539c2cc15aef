/// The items a `for` / `tablerow` iterates, sliced by offset and limit without copying arrays or
/// materializing ranges (Ruby's `Utils.slice_collection`).
struct LoopSegment {
    enum Base {
        case array([LiquidValue])
        case range(Int)
        case single(LiquidValue)
    }

    let base: Base
    let lower: Int
    let count: Int
    let reversed: Bool

    init(_ collection: LiquidValue, from: Int, to: Int?, reversed: Bool) {
        self.reversed = reversed
        let total: Int
        switch collection {
        case .array(let a):
            base = .array(a)
            total = a.count
        case .range(let first, let last):
            base = .range(first)
            total = LoopSegment.rangeCount(first, last)
        case .object(let o):
            base = .array(o.pairs.map { .array([.string($0.key), $0.value]) })
            total = o.count
        case .string(let s):
            // Ruby: a string is one item, whatever the offset and limit.
            base = .single(collection)
            lower = 0
            count = s.isEmpty ? 0 : 1
            return
        default:
            base = .array([])
            total = 0
        }
        let lo = max(from, 0)
        let hi = min(total, to ?? total)
        lower = lo
        count = max(0, hi - lo)
    }

    /// The number of integers in `first...last`, saturating instead of overflowing.
    static func rangeCount(_ first: Int, _ last: Int) -> Int {
        guard last >= first else { return 0 }
        let (d, o1) = last.subtractingReportingOverflow(first)
        let (n, o2) = d.addingReportingOverflow(1)
        return o1 || o2 ? Int.max : n
    }

    @inline(__always)
    func item(_ k: Int) -> LiquidValue {
        let i = reversed ? lower + count - 1 - k : lower + k
        switch base {
        case .array(let a): return a[i]
        case .range(let first): return .int(first &+ i)
        case .single(let v): return v
        }
    }
}
