@testable import AMQPClient
import Testing

// Mutating calls cannot sit inside `#expect`, so each is made first, in a `do` block.
@Suite struct AMQPAckCoalescerTests {
    private func coalescer(delivered tags: ClosedRange<UInt64>) -> AMQPAckCoalescer {
        var c = AMQPAckCoalescer()
        for tag in tags { c.delivered(tag) }
        return c
    }

    @Test func inOrderAcksBecomeOneMultipleAck() {
        var c = coalescer(delivered: 1...5)
        for tag: UInt64 in 1...4 { do { let marked = c.markAck(tag); #expect(marked) } }
        do { let taken = c.take(); #expect(taken == [.init(tag: 4, multiple: true)]) }
        #expect(c.openCount == 1)
        do { let taken = c.take(); #expect(taken == []) }
        do { let marked = c.markAck(5); #expect(marked) }
        do { let taken = c.take(); #expect(taken == [.init(tag: 5, multiple: false)]) }
        #expect(c.openCount == 0)
    }

    @Test func acksBehindAnOpenDeliveryGoOutAlone() {
        var c = coalescer(delivered: 1...4)
        do { let marked = c.markAck(2); #expect(marked) }
        do { let marked = c.markAck(4); #expect(marked) }
        do { let taken = c.take(); #expect(taken == [.init(tag: 2, multiple: false), .init(tag: 4, multiple: false)]) }
        // When the front finishes, the multiple ack must not name an already-acked tag.
        do { let marked = c.markAck(1); #expect(marked) }
        do { let taken = c.take(); #expect(taken == [.init(tag: 1, multiple: false)]) }
        do { let marked = c.markAck(3); #expect(marked) }
        do { let taken = c.take(); #expect(taken == [.init(tag: 3, multiple: false)]) }
        #expect(c.openCount == 0)
    }

    @Test func rejectedDeliveriesDoNotHoldTheFront() {
        var c = coalescer(delivered: 1...4)
        c.settled(1)
        do { let marked = c.markAck(2); #expect(marked) }
        c.settled(3)
        do { let marked = c.markAck(4); #expect(marked) }
        do { let taken = c.take(); #expect(taken == [.init(tag: 4, multiple: true)]) }
        #expect(c.openCount == 0)
    }

    @Test func unknownOrTwiceAckedTagsAreRefused() {
        var c = coalescer(delivered: 1...2)
        do { let marked = c.markAck(9); #expect(!marked) }
        do { let marked = c.markAck(1); #expect(marked) }
        do { let marked = c.markAck(1); #expect(!marked) }
        _ = c.take()
        do { let marked = c.markAck(1); #expect(!marked) }
        c.reset()
        do { let marked = c.markAck(2); #expect(!marked) }
        #expect(c.openCount == 0)
    }

    @Test func longRunsCompactWithoutLosingTags() {
        var c = AMQPAckCoalescer()
        for tag in UInt64(1)...10_000 { c.delivered(tag) }
        for tag in UInt64(1)...6_000 where tag != 5_000 { do { let marked = c.markAck(tag); #expect(marked) } }
        do { let taken = c.take(); #expect(taken == [.init(tag: 4_999, multiple: true)] + (5_001...6_000).map { .init(tag: UInt64($0), multiple: false) }) }
        do { let marked = c.markAck(5_000); #expect(marked) }
        do { let taken = c.take(); #expect(taken == [.init(tag: 5_000, multiple: false)]) }
        #expect(c.openCount == 4_000)
        do { let marked = c.markAck(10_000); #expect(marked) }
        do { let taken = c.take(); #expect(taken == [.init(tag: 10_000, multiple: false)]) }
    }
}
