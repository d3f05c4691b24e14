import Core
import Model
import Spec

/// Draws inputs for a model in its current state, with field values from the partitions where TCP's rules change:
/// sequence numbers below, at, inside, at the last octet of, at the right edge of and beyond the receive window, where
/// modular comparison turns over, the peer's ISN again, just past the held text; acknowledgments below, at and above SND.UNA and SND.NXT and
/// at either side of SND.UNA-MAX.SND.WND; text of 0, 1, MSS and more than the window octets; once Timestamps are
/// agreed, a TSval older than TS.Recent.
public struct InputSampler: Sendable {
    public var rng: SplitMix64

    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    /// The largest text a segment carries: the MSS of an Ethernet link (1500 - 40).
    public static let mss: UInt32 = 1460

    mutating func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
    mutating func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }

    public mutating func next(for m: TCPModel) -> Input {
        let r = rng.next() % 100
        if r < 20 { return .call(call()) }
        if r < 24 { return .timeout(pick([.user, .retransmission, .timeWait])) }
        return .segment(segment(for: m))
    }

    public mutating func call() -> UserCall {
        switch rng.next() % 8 {
        case 0: return .openActive
        case 1: return .openPassive
        case 2: return .send(pick([1, 10, 1000, 70000]))
        case 3: return .receive(pick([1, 100, 100_000]))
        case 4: return .close
        case 5: return .abort
        case 6: return .shutdown
        default: return .status
        }
    }

    /// Whether an old TSval means anything to the endpoint: Timestamps agreed (TS.OK) and TS.Recent set, which it is
    /// from SYN-RECEIVED on (from the peer's SYN). In SYN-SENT TS.OK may already hold (the target's SYN offered them)
    /// while the target has no TS.Recent yet: a simultaneous open's SYN takes any TSval.
    public static func pawsApplies(_ m: TCPModel) -> Bool {
        guard m[.tsOK] == 1 else { return false }
        switch m.spec.states[m.state].state {
        case .closed, .listen, .synSent: return false
        default: return true
        }
    }

    public mutating func segment(for m: TCPModel) -> Segment {
        var ctl = ControlBits()
        if chance(80) { ctl.insert(.ack) }
        if chance(15) { ctl.insert(.syn) }
        if chance(15) { ctl.insert(.fin) }
        if chance(10) { ctl.insert(.rst) }
        if chance(5) { ctl.insert(.urg) }
        let rcvNxt = m[.rcvNxt], wnd = m[.rcvWnd]
        // Each boundary where a classifier's case changes is drawn exactly, not hoped for in a range (issue 21: an
        // off-by-one at the right edge of the window was never found while "beyond" was RCV.NXT+RCV.WND+rand(1000)).
        let seq: UInt32 = switch rng.next() % 10 {
        case 0: rcvNxt &- 1 &- (chance(50) ? 0 : UInt32(rng.next() % 1000))   // below the window: its last octet, or further
        case 1, 2: rcvNxt                                     // at RCV.NXT
        case 3: rcvNxt &+ UInt32(rng.next() % UInt64(max(wnd, 1)))  // inside
        case 4: rcvNxt &+ wnd &- 1                            // last octet
        case 5: rcvNxt &+ wnd                                 // the right edge: the first octet beyond
        case 6: rcvNxt &+ wnd &+ 1 &+ (chance(50) ? 0 : UInt32(rng.next() % 1000))  // beyond
        case 7:                                               // the peer's SYN again, or just past the held text
            m.heldEnd != rcvNxt && chance(50) ? m.heldEnd : m[.irs] // (the highest SACK block's right edge)
        case 8: rcvNxt &+ (chance(50) ? 0x7fff_ffff : 0x8000_0000)  // where modular comparison turns over
        default: UInt32(truncatingIfNeeded: rng.next())       // anywhere, across 2^32
        }
        let una = m[.sndUna], nxt = m[.sndNxt], maxWnd = m[.maxSndWnd]
        let ack: UInt32 = switch rng.next() % 9 {
        case 0: una &- 1
        case 1: una
        case 2, 3: nxt
        case 4: nxt &+ 1
        case 5: una &- maxWnd                                 // the oldest ACK RFC 5961 §5.2 still accepts
        case 6: una &- maxWnd &- 1                            // one older: a challenge ACK
        case 7: una &- 100_000
        default: UInt32(truncatingIfNeeded: rng.next())
        }
        // Text up to one MSS of a 1500-octet link (larger frames do not cross it); "more than the window" when
        // the window is small enough for that to fit.
        // The picks are written out as switches: an array literal a draw would cost an allocation (this runs up
        // to 120 times a fuzz step); each draws the same number from the generator as `pick` would.
        let data: UInt32 = switch rng.next() % 7 {
        case 0, 1, 2: 0
        case 3: 1
        case 4: 10
        case 5: InputSampler.mss
        default: min(wnd &+ 1, InputSampler.mss)
        }
        let window: UInt32 = switch rng.next() % 4 {
        case 0: 0
        case 1: 1
        case 2: 1000
        default: 65535
        }
        let urgentPointer: UInt32 = rng.next() % 2 == 0 ? 0 : 1
        // Once Timestamps are agreed, one segment in eight carries a TSval older than TS.Recent (PAWS, RFC 7323
        // §5.3); drawn only then, so connections without Timestamps draw what they drew before.
        let tsOld = InputSampler.pawsApplies(m) && rng.next() % 8 == 0
        return Segment(seq: seq, ack: ack, ctl: ctl, window: window, urgentPointer: urgentPointer, dataLength: data, tsOld: tsOld)
    }
}
