/// A tiny map searched linearly: per-render registers (cycle groups, `offset: continue` positions) hold a
/// handful of keys, where hashing would cost more than comparing.
struct SmallMap<Key: Equatable> {
    var entries: [(key: Key, value: Int)] = []

    /// The value for `key` (0 when absent), which is then replaced by `transform` of it, in one search.
    @inline(__always)
    mutating func update(_ key: Key, _ transform: (Int) -> Int) -> Int {
        for i in entries.indices where entries[i].key == key {
            let old = entries[i].value
            entries[i].value = transform(old)
            return old
        }
        entries.append((key, transform(0)))
        return 0
    }

    subscript(key: Key) -> Int? {
        get {
            for i in entries.indices where entries[i].key == key { return entries[i].value }
            return nil
        }
        set {
            for i in entries.indices where entries[i].key == key {
                if let newValue { entries[i].value = newValue } else { entries.remove(at: i) }
                return
            }
            if let newValue { entries.append((key, newValue)) }
        }
    }
}
