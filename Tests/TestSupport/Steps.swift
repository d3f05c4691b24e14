import Core
import Generator

extension FuzzStep {
    /// A passive open the tests start from: listen, the tester's SYN, its ACK of the SYN,ACK, accept (ESTABLISHED,
    /// both sides at relative sequence number 1).
    public static let passiveOpen: [FuzzStep] = [
        .call(.openPassive),
        .segment(Segment(seq: 0, ctl: .syn, window: 65535)),
        .segment(Segment(seq: 1, ack: 1, ctl: .ack, window: 65535)),
        .accept,
    ]
}
