import Core
import Generator
import Wire

extension FuzzStep {
    /// The step's kind, without its numbers (`segment FA`, `call send`), for signatures.
    var kindName: String {
        switch self {
        case .call(let c): "call \(socketCall?.name ?? "\(c)")"
        case .segment(let s): "segment " + (s.ctl.intersection([.syn, .ack, .fin, .rst])).notation + (s.dataLength > 0 ? "+data" : "")
        case .accept: "call accept"
        case .wait: "wait"
        }
    }
}
