/// Turns the acks of one I/O-loop pass into as few `basic.ack` frames as the protocol allows.
///
/// Delivery tags on a channel increase. The coalescer keeps the tags delivered and not yet settled, in
/// order. Acks requested during a pass are marked; at the end of the pass (``take()``), the longest run of
/// settled-or-marked tags at the front is acked with one `multiple` ack (RabbitMQ acks every unacked tag up
/// to it), and each marked tag behind a still-open one is acked alone, at once: waiting for the open job
/// would hold the finished ones against the prefetch window.
///
/// A value-type state machine owned by the I/O thread; it returns the frames to send and sends nothing.
struct AMQPAckCoalescer {
    /// One ack frame to send.
    struct Ack: Equatable {
        var tag: UInt64
        var multiple: Bool
    }

    private enum State { case open, marked, settled }

    private var tags: [UInt64] = []
    private var states: [State] = []
    private var head = 0
    private var markedBehindOpen: [Int] = []
    private var markedAtFront = false

    /// The number of tags delivered and not settled (acked, rejected or taken by ``take()``).
    var openCount: Int {
        var n = 0
        for index in head..<states.count where states[index] != .settled { n += 1 }
        return n
    }

    /// Records a delivery. Tags must increase; an out-of-order tag is not tracked (its ack goes out alone).
    mutating func delivered(_ tag: UInt64) {
        if let last = tags.last, tag <= last, head < tags.count { return }
        tags.append(tag)
        states.append(.open)
    }

    /// Marks `tag` to be acked at the next ``take()``. Returns false when the tag is not tracked; the
    /// caller then acks it alone.
    mutating func markAck(_ tag: UInt64) -> Bool {
        guard let index = index(of: tag), states[index] == .open else { return false }
        states[index] = .marked
        if index == head { markedAtFront = true } else { markedBehindOpen.append(index) }
        return true
    }

    /// Records that `tag` was settled another way (rejected), so it no longer holds the front back.
    mutating func settled(_ tag: UInt64) {
        guard let index = index(of: tag) else { return }
        states[index] = .settled
        if index == head { advanceFront() }
    }

    /// The ack frames for what was marked since the last call, in the order to send them.
    mutating func take() -> [Ack] {
        guard markedAtFront || !markedBehindOpen.isEmpty else { return [] }
        var acks: [Ack] = []
        // The front run: every tag settled or marked; one ack for the last marked tag among them.
        var lastMarked = -1
        var markedCount = 0
        var index = head
        while index < states.count && states[index] != .open {
            if states[index] == .marked {
                lastMarked = index
                markedCount += 1
                states[index] = .settled
            }
            index += 1
        }
        if lastMarked >= 0 { acks.append(Ack(tag: tags[lastMarked], multiple: markedCount > 1)) }
        head = index
        // Marked tags behind an open one: alone.
        for marked in markedBehindOpen where marked >= head && states[marked] == .marked {
            states[marked] = .settled
            acks.append(Ack(tag: tags[marked], multiple: false))
        }
        markedBehindOpen.removeAll(keepingCapacity: true)
        markedAtFront = false
        compact()
        return acks
    }

    /// Forgets everything (the connection was lost: its deliveries are the broker's again).
    mutating func reset() {
        tags.removeAll()
        states.removeAll()
        head = 0
        markedBehindOpen.removeAll()
        markedAtFront = false
    }

    private mutating func advanceFront() {
        while head < states.count && states[head] == .settled { head += 1 }
        compact()
    }

    private mutating func compact() {
        if head == tags.count {
            tags.removeAll(keepingCapacity: true)
            states.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 4096 {
            tags.removeFirst(head)
            states.removeFirst(head)
            markedBehindOpen = markedBehindOpen.map { $0 - head }
            head = 0
        }
    }

    private func index(of tag: UInt64) -> Int? {
        var low = head
        var high = tags.count - 1
        while low <= high {
            let mid = (low + high) / 2
            if tags[mid] == tag { return mid }
            if tags[mid] < tag { low = mid + 1 } else { high = mid - 1 }
        }
        return nil
    }
}
