/// A TCP segment as the model sees it: header fields and the length of its text (not its bytes).
public struct Segment: Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {
    public var seq: UInt32
    public var ack: UInt32
    public var ctl: ControlBits
    public var window: UInt32
    public var urgentPointer: UInt32
    /// Octets of text (SEG.LEN without SYN and FIN).
    public var dataLength: UInt32
    /// The tester's segment carries a Timestamps option whose TSval is older than any it sent on the connection, so
    /// older than the receiver's TS.Recent (RFC 7323 §5.3 R1's SEG.TSval < TS.Recent): SEG.TSOLD in the spec. Only
    /// meaningful once both SYNs agreed Timestamps; the target's segments never set it.
    public var tsOld: Bool
    /// An oddity in the tester's option list that leaves the segment's meaning unchanged (`OptionOddity`): the model
    /// ignores it, the tester's options carry it, a divergence on it names its requirement.
    public var oddity: OptionOddity

    public init(seq: UInt32, ack: UInt32 = 0, ctl: ControlBits, window: UInt32 = 65535, urgentPointer: UInt32 = 0, dataLength: UInt32 = 0, tsOld: Bool = false,
                oddity: OptionOddity = .none) {
        self.seq = seq
        self.ack = ack
        self.ctl = ctl
        self.window = window
        self.urgentPointer = urgentPointer
        self.dataLength = dataLength
        self.tsOld = tsOld
        self.oddity = oddity
    }

    /// SEG.LEN: text plus the sequence numbers SYN and FIN occupy (RFC 9293 §3.3.1).
    @inlinable public var length: UInt32 {
        dataLength &+ (ctl.contains(.syn) ? 1 : 0) &+ (ctl.contains(.fin) ? 1 : 0)
    }

    /// RFC notation: `<SEQ=100><ACK=301><CTL=SYN,ACK><DATA=10>`.
    public var description: String {
        var s = "<SEQ=\(seq)>"
        if ctl.contains(.ack) { s += "<ACK=\(ack)>" }
        s += "<CTL=\(ctl)>"
        if dataLength > 0 { s += "<DATA=\(dataLength)>" }
        if tsOld { s += "<TSVAL=old>" }
        if oddity != .none { s += "<OPT=\(oddity)>" }
        return s
    }
}
