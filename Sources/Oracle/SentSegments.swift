import Core

/// What one end has sent that occupies sequence space (text, SYN, FIN), by SEQ, control bits, ACK and length:
/// the same again is a retransmission (a timer fired), not a new output. The ACK is part of it: a SYN,ACK that
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

    public init() {}

    static func key(_ s: Segment) -> Key? {
        guard s.dataLength > 0 || s.ctl.contains(.syn) || s.ctl.contains(.fin), !s.ctl.contains(.rst) else { return nil }
        return Key(seq: s.seq, ctl: s.ctl.intersection([.syn, .fin, .ack]), ack: s.ctl.contains(.ack) ? s.ack : 0, length: s.dataLength)
    }

    /// Whether `s` repeats a segment noted before.
    public func contains(_ s: Segment) -> Bool { Self.key(s).map(keys.contains) ?? false }

    public mutating func note(_ s: Segment) {
        if let k = Self.key(s) { keys.insert(k) }
    }

    public mutating func formUnion(_ o: SentSegments) { keys.formUnion(o.keys) }
}
