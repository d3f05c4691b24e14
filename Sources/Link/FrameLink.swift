import Core
import Wire

/// Where a tester injects frames and captures the target's: libpcap on a veth, or a virtual link to an
/// in-process stack.
public protocol FrameLink: AnyObject, Sendable {
    var linkType: LinkType { get }
    func inject(_ bytes: [UInt8]) throws
    /// The next captured frame, waiting up to `timeout` seconds.
    func next(timeout: Double) -> Frame?
}

extension PcapLink: FrameLink {}
