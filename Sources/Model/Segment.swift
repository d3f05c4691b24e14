import Core
import Spec


/// User calls of RFC 9293 §3.10.1-6.
public enum UserCall: Hashable, Sendable {
    case openActive
    case openPassive
    case send(UInt32)
    case receive(UInt32)
    case close
    case abort
    case status
    /// The half-close: `shutdown(SHUT_WR)` (EventKind.shutdown).
    case shutdown

    public var event: EventKind {
        switch self {
        case .openActive: .openActive
        case .openPassive: .openPassive
        case .send: .send
        case .receive: .receive
        case .close: .close
        case .abort: .abort
        case .status: .status
        case .shutdown: .shutdown
        }
    }

    var length: UInt32 {
        switch self {
        case .send(let n), .receive(let n): n
        default: 0
        }
    }
}

/// Timeouts of RFC 9293 §3.10.8.
public enum Timeout: Hashable, Sendable {
    case user, retransmission, timeWait
    /// RFC 9293 §3.8.4's keep-alive timer.
    case keepalive

    public var event: EventKind {
        switch self {
        case .user: .userTimeout
        case .retransmission: .retransmissionTimeout
        case .timeWait: .timeWaitTimeout
        case .keepalive: .keepaliveTimeout
        }
    }
}

extension Timeout {
    /// The timeout of a running timer.
    public init(_ t: TimerName) {
        switch t {
        case .user: self = .user
        case .retransmission: self = .retransmission
        case .timeWait: self = .timeWait
        case .keepalive: self = .keepalive
        }
    }
}

/// One input to the model.
public enum Input: Hashable, Sendable {
    case segment(Segment)
    case call(UserCall)
    case timeout(Timeout)

    public var event: EventKind {
        switch self {
        case .segment: .segment
        case .call(let c): c.event
        case .timeout(let t): t.event
        }
    }
}
