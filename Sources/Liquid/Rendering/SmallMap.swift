/// A tiny map searched linearly: per-render registers (cycle groups, `offset: continue` positions) hold a
/// handful of keys, where hashing would cost more than comparing.
struct SmallMap<Key: Equatable> {
    var entries: [(key: Key, value: Int)] = []

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
