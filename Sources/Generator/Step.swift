import Core
import Model
import Spec

/// One step of a case, in the connection's relative numbers: a segment's SEQ counts from the tester's ISN, its
/// ACK from the target's (as case files write them).
public enum FuzzStep: Hashable, Sendable {
    case call(UserCall)
    case segment(Segment)
    /// Take the connection from the listener (an application step with no RFC event).
    case accept
    /// Let this many seconds pass: the timers that expire meanwhile are the step's events (RFC 9293 §3.10.8).
    case wait(Double)

    public var input: Input? {
        switch self {
        case .call(let c): .call(c)
        case .segment(let s): .segment(s)
        case .accept, .wait: nil
        }
    }

    /// The socket call a target makes for this step.
    public var socketCall: SocketCall? {
        switch self {
        case .call(.openPassive): .listen(backlog: 64)
        case .call(.openActive): .connect
        case .call(.send(let n)): .send(Int(n))
        case .call(.receive(let n)): .recv(Int(n))
        case .call(.close): .close
        case .call(.shutdown): .shutdown(.wr)
        case .call(.abort): .abort
        case .accept: .accept
        default: nil
        }
    }
}

/// A way into a state: the steps from CLOSED that lead there. The search over the model finds the shortest and
/// every distinct one (passive or active, socket held or not); the fuzzer's own connections add more.
public typealias Way = [FuzzStep]

/// What a case does next, as planned.
public enum PlanItem: Sendable {
    case step(FuzzStep)
    /// An input of this class, drawn when the connection gets there.
    case cell(state: Int, event: EventKind, cell: Int)
    case random
    /// A random step after which the model stays in its state (conformance runs set up a class this way).
    case stay
    /// A wait that shows whether the stack restarted timer `t` (`Planner.restartCheckWait`), if one can.
    case restartCheck(TimerName)
}
