import Core
import Model
import Spec
import Targets
import Wire

/// One step of a fuzz case, in the connection's relative numbers: a segment's SEQ counts from the tester's ISN,
/// its ACK from the target's (as case files write them).
public enum FuzzStep: Hashable, Sendable {
    case call(UserCall)
    case segment(Segment)
    /// Take the connection from the listener (an application step with no RFC event).
    case accept

    var input: Input? {
        switch self {
        case .call(let c): .call(c)
        case .segment(let s): .segment(s)
        case .accept: nil
        }
    }

    /// The step's kind, without its numbers (`segment FA`, `call send`), for signatures.
    var kindName: String {
        switch self {
        case .call(let c): "call \(socketCall?.name ?? "\(c)")"
        case .segment(let s): "segment " + Notation.flags(s.ctl.intersection([.syn, .ack, .fin, .rst])) + (s.dataLength > 0 ? "+data" : "")
        case .accept: "call accept"
        }
    }

    /// The socket call a target makes for this step.
    var socketCall: SocketCall? {
        switch self {
        case .call(.openPassive): .listen(backlog: 64)
        case .call(.openActive): .connect
        case .call(.send(let n)): .send(Int(n))
        case .call(.receive(let n)): .recv(Int(n))
        case .call(.close): .close
        case .call(.abort): .abort
        case .accept: .accept
        default: nil
        }
    }
}

