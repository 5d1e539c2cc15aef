/// The `k` best elements of a stream under `better` (a strict order: whether the first ranks before the second),
/// kept in a binary heap whose root is the worst of them: most elements of a long stream lose one comparison
/// with the root. Used for each item's neighbours in training and each person's top n: full sorts of those were
/// most of their time on MovieLens (`fleet bench content --quality`).
struct TopK<Element> {
    let k: Int
    let better: (Element, Element) -> Bool
    private var heap: [Element] = []

    init(_ k: Int, by better: @escaping (Element, Element) -> Bool) {
        self.k = k
        self.better = better
        heap.reserveCapacity(k)
    }

    mutating func offer(_ e: Element) {
        if heap.count < k {
            heap.append(e)
            var c = heap.count - 1
            while c > 0 {
                let p = (c - 1) / 2
                guard better(heap[p], heap[c]) else { break }
                heap.swapAt(p, c)
                c = p
            }
        } else if k > 0, better(e, heap[0]) {
            heap[0] = e
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var worst = p
                if l < heap.count, better(heap[worst], heap[l]) { worst = l }
                if r < heap.count, better(heap[worst], heap[r]) { worst = r }
                if worst == p { break }
                heap.swapAt(p, worst)
                p = worst
            }
        }
    }

    /// The kept elements, best first.
    func sorted() -> [Element] { heap.sorted(by: better) }
}
