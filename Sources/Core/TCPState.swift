/// The states of a TCP connection (RFC 9293 §3.3.2), shared by the spec, the model, the targets and the reports:
/// a state is never a string at a boundary. The raw value is the RFC's spelling, as specs and case files write it.
public enum TCPState: String, CaseIterable, Hashable, Sendable, Codable, CustomStringConvertible {
    case closed = "CLOSED"
    case listen = "LISTEN"
    case synSent = "SYN-SENT"
    case synReceived = "SYN-RECEIVED"
    case established = "ESTABLISHED"
    case finWait1 = "FIN-WAIT-1"
    case finWait2 = "FIN-WAIT-2"
    case closeWait = "CLOSE-WAIT"
    case closing = "CLOSING"
    case lastAck = "LAST-ACK"
    case timeWait = "TIME-WAIT"

    public var description: String { rawValue }

    /// The RFC spelling, or nil for anything else (a spec naming a state RFC 9293 does not have is an error).
    public init?(name: String) { self.init(rawValue: name) }

    /// The kernel's numbering (<linux/tcp.h>), as sock_diag reports it.
    public static func fromLinux(_ s: Int32) -> TCPState? {
        switch s {
        case 1: .established
        case 2: .synSent
        case 3, 12: .synReceived  // TCP_SYN_RECV, TCP_NEW_SYN_RECV (a request socket)
        case 4: .finWait1
        case 5: .finWait2
        case 6: .timeWait
        case 7: .closed
        case 8: .closeWait
        case 9: .lastAck
        case 10: .listen
        case 11: .closing
        default: nil
        }
    }
}
