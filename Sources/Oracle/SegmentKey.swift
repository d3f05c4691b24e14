import Core
import Model
import Wire

/// A segment reduced to what the oracle compares: control bits that matter to TCP state (SYN, ACK, FIN, RST),
/// SEQ, ACK and text length. Windows, PSH and options are the stack's own business.
public struct SegmentKey: Hashable, Sendable, CustomStringConvertible {
    public var ctl: ControlBits
    public var seq: UInt32
    public var ack: UInt32
    public var length: UInt32

    public init(_ s: Segment) {
        ctl = s.ctl.intersection([.syn, .ack, .fin, .rst])
        seq = s.seq
        ack = ctl.contains(.ack) ? s.ack : 0
        length = s.dataLength
    }

    public var description: String {
        var s = ctl.notation + " \(seq):\(seq &+ length)(\(length))"
        if ctl.contains(.ack) { s += " ack \(ack)" }
        return s
    }

    /// The same outputs with each pure ACK carried by the data or FIN segment sent before it (RFC 9293 §3.8.6.3
    /// "piggybacked"): a stack that queues the arriving text before it transmits sends one segment with the
    /// newer acknowledgment where the model's step order gives two.
    public static func coalesced(_ keys: [SegmentKey]) -> [SegmentKey] {
        var out: [SegmentKey] = []
        for k in keys {
            if k.ctl == .ack, k.length == 0, let i = out.lastIndex(where: { ($0.length > 0 || $0.ctl.contains(.fin)) && $0.ctl.contains(.ack) && !$0.ctl.contains(.rst) }),
               !TCPModel.seqLess(k.ack, out[i].ack) {
                out[i].ack = k.ack
                continue
            }
            out.append(k)
        }
        return out
    }

    /// Contiguous data (and a FIN right after it) is one run however the stack cut it into segments.
    public static func normalize(_ segs: [Segment]) -> [SegmentKey] {
        var out: [SegmentKey] = []
        for s in segs {
            let k = SegmentKey(s)
            if var last = out.last, last.length > 0 || k.length > 0, !last.ctl.contains(.fin), !last.ctl.contains(.syn), !k.ctl.contains(.syn),
               !last.ctl.contains(.rst), !k.ctl.contains(.rst), last.seq &+ last.length == k.seq, last.ack == k.ack, last.ctl.contains(.ack) == k.ctl.contains(.ack),
               last.length > 0 {
                last.length &+= k.length
                if k.ctl.contains(.fin) { last.ctl.insert(.fin) }
                out[out.count - 1] = last
            } else {
                out.append(k)
            }
        }
        return out
    }

    /// Whether `observed` is `expected` with one run of text cut short (its FIN, if it had one, not sent either),
    /// and by how much: a sender whose congestion window is smaller than the peer's window sends less than the
    /// window allows (RFC 5681 §3.1; RFC 9293 §3.8.2 MUST-19) and the rest as acknowledgments open it. At least
    /// one octet must go: a stack that sends nothing is judged as silent.
    public static func heldBack(expected: [SegmentKey], observed: [SegmentKey]) -> (octets: UInt32, fin: Bool)? {
        guard expected.count == observed.count else { return nil }
        var held: (octets: UInt32, fin: Bool)?
        for (e, o) in zip(expected, observed) where e != o {
            guard held == nil, e.length > 0, e.ctl.contains(.ack), e.ctl.isDisjoint(with: [.syn, .rst]),
                  o.seq == e.seq, o.ack == e.ack, o.ctl.subtracting(.fin) == e.ctl.subtracting(.fin), !o.ctl.contains(.fin),
                  o.length > 0, o.length < e.length || e.ctl.contains(.fin), o.length <= e.length else { return nil }
            held = (e.length - o.length, e.ctl.contains(.fin))
        }
        return held
    }

    /// Whether `a` and `b` differ only in the ACK bit and field of resets. A receiver in a synchronized state
    /// validates a RST by its sequence number alone (RFC 9293 §3.10.7.4, "all reset (RST) segments are
    /// validated by checking their SEQ fields"; no check there reads SEG.ACK of a RST), so such segments are the
    /// same to the peer. Only a peer in SYN-SENT reads the ACK of a RST (§3.10.7.3): callers ask this only for
    /// connections whose peer is synchronized.
    public static func differOnlyInResetAcks(_ a: [SegmentKey], _ b: [SegmentKey]) -> Bool {
        guard a.count == b.count, a != b else { return false }
        for (x, y) in zip(a, b) where x != y {
            guard x.ctl.contains(.rst), y.ctl.contains(.rst), x.ctl.subtracting(.ack) == y.ctl.subtracting(.ack),
                  x.seq == y.seq, x.length == y.length else { return false }
        }
        return true
    }
}
