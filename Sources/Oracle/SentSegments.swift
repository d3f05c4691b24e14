import Core
import Model

/// What one end has sent: the segments that occupy sequence space (text, SYN, FIN), by SEQ, control bits, ACK
/// and length — the same again is a retransmission (a timer fired), not a new output — and how far into sequence
/// space it has sent at all, for text sent again however it is cut (the offline checker's view). The ACK is part of it: a SYN,ACK that
/// acknowledges another SYN is a new answer, not the old one again. Numbers as the caller keeps them (relative or
/// absolute, the same for every call).
public struct SentSegments: Sendable {
    struct Key: Hashable, Sendable {
        var seq: UInt32
        var ctl: ControlBits
        var ack: UInt32
        var length: UInt32
    }

    private var keys: Set<Key> = []
    /// The keys again with their ACK zeroed (`repeatsButForAck`).
    private var ackless: Set<Key> = []
    /// The end of the furthest segment sent (SEQ + SEG.LEN); nil before the first.
    public private(set) var highestEnd: UInt32?

    public init() {}

    /// Whether the end has sent anything yet.
    public var any: Bool { highestEnd != nil }

    static func key(_ s: Segment) -> Key? {
        guard s.dataLength > 0 || s.ctl.contains(.syn) || s.ctl.contains(.fin), !s.ctl.contains(.rst) else { return nil }
        return Key(seq: s.seq, ctl: s.ctl.intersection([.syn, .fin, .ack]), ack: s.ctl.contains(.ack) ? s.ack : 0, length: s.dataLength)
    }

    /// Whether `s` repeats a segment noted before.
    public func contains(_ s: Segment) -> Bool { Self.key(s).map(keys.contains) ?? false }

    /// Whether `s` repeats a segment noted before but for its ACK: what a retransmission timer sends once more
    /// has arrived meanwhile (it carries the RCV.NXT of now, RFC 9293 §3.10.7.4). The caller asks only for a
    /// segment no rule expects, so a new answer that happens to share SEQ and length is still judged.
    public func repeatsButForAck(_ s: Segment) -> Bool {
        guard var k = Self.key(s), k.ctl.contains(.ack) else { return false }
        k.ack = 0
        return ackless.contains(k)
    }

    public mutating func note(_ s: Segment) {
        if var k = Self.key(s) {
            keys.insert(k)
            k.ack = 0
            ackless.insert(k)
        }
        noteEnd(s.seq &+ s.length)
    }

    /// Sent up to `end` (a segment not seen, such as a SYN the handshake's numbers imply).
    public mutating func noteEnd(_ end: UInt32) {
        if let h = highestEnd, !TCPModel.seqLess(h, end) { return }
        highestEnd = end
    }

    /// Whether every sequence number of a segment of `length` (SEG.LEN) at `seq` was sent before: text sent again,
    /// cut the same way or not.
    public func covers(seq: UInt32, length: UInt32) -> Bool {
        guard length > 0, let h = highestEnd else { return false }
        return !TCPModel.seqLess(h, seq &+ length)
    }

    public mutating func formUnion(_ o: SentSegments) {
        keys.formUnion(o.keys)
        ackless.formUnion(o.ackless)
        if let h = o.highestEnd { noteEnd(h) }
    }
}
