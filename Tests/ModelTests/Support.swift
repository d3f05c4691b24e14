import Core
import Foundation
import Model
import Spec
import TestSupport
import Testing

/// A profile of the repository's spec, compiled once for the whole test run.
func spec(_ profile: String) throws -> CompiledSpec { try Repository.spec(profile) }

/// One endpoint of a figure: a model plus readable assertions.
struct Endpoint {
    var m: TCPModel
    let name: String

    init(_ spec: CompiledSpec, _ name: String, receiveWindow: UInt32 = 65535) {
        m = TCPModel(spec: spec, configuration: .init(receiveWindow: receiveWindow))
        self.name = name
    }

    var state: String { m.stateName }

    mutating func call(_ c: UserCall, iss: UInt32? = nil) -> [Segment] {
        Array(m.call(c, iss: iss).outputs.map(\.segment))
    }

    mutating func receive(_ s: Segment, iss: UInt32? = nil) -> [Segment] {
        Array(m.receive(s, iss: iss).outputs.map(\.segment))
    }

    mutating func timeout(_ t: Timeout) -> [Segment] {
        Array(m.timeout(t).outputs.map(\.segment))
    }
}

/// `<SEQ=100><ACK=301><CTL=SYN,ACK>` as the figures write it: SYN/ACK/FIN/RST (PSH is not shown in the RFC's
/// figures), SEQ, ACK when the ACK bit is set, and the text length.
func figure(_ s: Segment) -> String {
    var ctl = s.ctl
    ctl.remove(.psh)
    var out = "<SEQ=\(s.seq)>"
    if ctl.contains(.ack) { out += "<ACK=\(s.ack)>" }
    out += "<CTL=\(ctl)>"
    if s.dataLength > 0 { out += "<DATA=\(s.dataLength)>" }
    return out
}

func figures(_ segs: [Segment]) -> [String] { segs.map(figure) }
