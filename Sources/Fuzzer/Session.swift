import Core
import Foundation
import Link
import Model
import Oracle
import Spec
import Targets
import Wire

/// What one step did, as the model predicted it and as the target did it.
public struct StepLog: Sendable {
    public var step: FuzzStep
    public var stateBefore: TCPState
    public var expected: [Segment]
    public var expectedState: TCPState
    public var observed: [Segment]
    public var observedState: TCPState?
    public var callResult: CallResult?
    /// The rules that decided the input (indices into the spec's rules).
    public var rules: [Int]
    public var cell: Int
    public var event: EventKind?
    public var mismatches: [Mismatch]

    public var diverged: Bool { !mismatches.isEmpty }
}

/// One connection under test: the model's prediction of it and the tester's view of the real one.
final class Lane {
    let id: Int
    var tuple: Tuple
    var model: TCPModel
    /// The judgement of this connection's steps (its numbering, what the target sent, its window).
    var oracle: StepOracle
    var testerISN: UInt32 { oracle.testerISN }
    var targetISN: UInt32? { oracle.targetISN }
    var steps: [FuzzStep] = []
    var log: [StepLog] = []
    var plan: [PlanItem] = []
    var passive = false
    var accepted = false
    var acceptTried = false
    var socketOpen = false
    /// Conformance runs: the input class this lane tests, the step that carries it, and why none could.
    var conformCell: Int?
    var cellStep: Int?
    var cellMissed: String?
    var caseIndex: Int = 0

    /// The calls the target offers (its agent's capability list); nil: all of them.
    var offered: Set<String>?

    init(id: Int, tuple: Tuple, spec: CompiledSpec, testerISN: UInt32, offered: Set<String>? = nil) {
        self.id = id
        self.offered = offered
        self.tuple = tuple
        oracle = StepOracle(testerISN: testerISN)
        model = TCPModel(spec: spec, configuration: .init(receiveWindow: 65535))
    }

    var diverged: Bool { log.last?.diverged ?? false }

    /// The socket's bookkeeping after a step; `acceptSucceeded`: whether an accept returned a connection (on the
    /// model it does).
    func track(_ step: FuzzStep, acceptSucceeded: Bool = true) {
        switch step {
        case .call(.openPassive):
            socketOpen = true
            passive = true
        case .call(.openActive): socketOpen = true
        case .call(.close), .call(.abort): socketOpen = false
        case .accept:
            acceptTried = true
            accepted = accepted || acceptSucceeded
        default: break
        }
    }

    /// A copy with the model and the socket's bookkeeping (what drawing an input and replaying its steps need).
    func snapshot() -> Lane {
        let l = Lane(id: -1, tuple: tuple, spec: model.spec, testerISN: testerISN, offered: offered)
        l.model = model
        l.oracle = oracle
        l.steps = steps
        l.passive = passive
        l.accepted = accepted
        l.acceptTried = acceptTried
        l.socketOpen = socketOpen
        return l
    }

    /// The model numbers the tester's side absolutely (so that rules comparing with an unset variable, such as
    /// RFC 9293's SYN-SENT RST check against RCV.NXT, see what a stack sees) and the target's side from its ISN;
    /// steps and case files number both sides from their ISNs.
    func modelInput(_ step: FuzzStep) -> Input? {
        guard case .segment(var s) = step else { return step.input }
        s.seq &+= testerISN
        return .segment(s)
    }

    /// A segment drawn against the model, as a step.
    func step(fromModel s: Segment) -> FuzzStep {
        var s = Lane.fitLink(s)
        s.seq &-= testerISN
        return .segment(s)
    }

    /// Text that fits one 1500-octet frame with the headers and options the fuzzer sends (a SYN carries MSS).
    static func fitLink(_ s: Segment) -> Segment {
        var s = s
        let room: UInt32 = s.ctl.contains(.syn) ? 1456 : 1460
        if s.dataLength > room { s.dataLength = room }
        return s
    }

    /// Calls the application can still make (a closed socket takes none; a passive connection none before it
    /// has been taken from the listener).
    func callAllowed(_ c: UserCall, spec: CompiledSpec) -> Bool {
        let state = spec.states[model.state].name
        if let o = offered, let name = FuzzStep.call(c).socketCall?.name, !o.contains(name) { return false }
        switch c {
        case .openActive, .openPassive: return !socketOpen && steps.isEmpty
        case .status: return false
        case .send, .receive, .close, .abort:
            guard socketOpen else { return false }
            if passive && !accepted { return state == "LISTEN" && (c == .close || c == .abort) }
            return true
        }
    }
}

enum PlanItem: Sendable {
    case step(FuzzStep)
    /// An input of this class, drawn when the connection gets there.
    case cell(state: Int, event: EventKind, cell: Int)
    case random
    /// A random step after which the model stays in its state (conformance runs set up a class this way).
    case stay
}

/// Runs steps of many connections against a target in rounds: each round makes the calls, injects the segments,
/// passes a barrier, then judges every connection's step against the model.
final class Session {
    let spec: CompiledSpec
    let target: Target
    private(set) var frames: [Frame] = []
    var keepFrames: Bool
    /// A shrinking window is one finding however many connections show it: once recorded, the fuzzer turns
    /// this off and later shrinks only move the model's window edge.
    var reportsWindowShrink = true

    init(spec: CompiledSpec, target: Target, keepFrames: Bool) {
        self.spec = spec
        self.target = target
        self.keepFrames = keepFrames
    }

    func absolute(_ s: Segment, _ lane: Lane) -> [UInt8] {
        var tcp = TCPHeader(sourcePort: lane.tuple.testerPort, destinationPort: lane.tuple.targetPort, seq: lane.testerISN &+ s.seq,
                            ack: s.ctl.contains(.ack) ? (lane.targetISN ?? 0) &+ s.ack : 0, flags: s.ctl,
                            window: UInt16(clamping: s.window), urgentPointer: UInt16(clamping: s.urgentPointer))
        tcp.payload = [UInt8](repeating: 0x78, count: Int(s.dataLength))
        if s.ctl.contains(.syn) { tcp.options = [.maxSegmentSize(1460)] }
        return target.frame(tcp).encode()
    }

    /// Runs one step for each lane given (at most one step per lane) and judges it: the calls, then the
    /// segments, then a barrier and the states, in one exchange with the target.
    /// `releasing`: connections of finished cases, let go first in the same exchange.
    func round(_ work: [(Lane, FuzzStep)], releasing: [Tuple] = []) throws {
        var transitions: [Transition?] = []
        var batch: [[UInt8]] = []
        var calls: [(SocketCall, Tuple)] = releasing.map { (.release, $0) }
        var callOf: [Int?] = []
        var before: [TCPState] = []
        for (lane, step) in work {
            before.append(spec.states[lane.model.state].state)
            transitions.append(lane.modelInput(step).map { lane.model.apply($0) })
            if case .segment(let s) = step {
                batch.append(absolute(s, lane))
                callOf.append(nil)
            } else if let sc = step.socketCall {
                callOf.append(calls.count)
                calls.append((sc, lane.tuple))
            } else {
                callOf.append(nil)
            }
            lane.steps.append(step)
        }
        let sentAt = PcapLink.now
        let ex: Exchange
        do {
            ex = try target.exchange(calls: calls, inject: batch, states: work.map { $0.0.tuple })
        } catch let f as TargetFailure {
            // The stack failed as a program: every connection of the round ends here with the failure as its
            // observation (which one caused it is found by replaying each alone).
            for (k, (lane, step)) in work.enumerated() {
                let tr = transitions[k]
                lane.log.append(StepLog(step: step, stateBefore: before[k], expected: tr.map { Array($0.outputs).map(\.segment) } ?? [],
                                        expectedState: spec.states[lane.model.state].state, observed: [], observedState: nil, callResult: nil,
                                        rules: tr.map { $0.chain >= 0 ? spec.chains[$0.chain].rules : [] } ?? [], cell: tr?.cell ?? -1, event: tr?.event,
                                        mismatches: [.failure(f.kind, detail: f.detail)]))
            }
            throw f
        }
        if keepFrames {
            // In time order: the target's replies to calls (a SYN after connect) come before the injections,
            // its replies to segments after them.
            let injected = batch.map { Frame(time: sentAt, bytes: $0, direction: .injected) }
            frames += (injected + ex.frames).sorted { $0.time < $1.time }
        }
        var byTuple: [Tuple: [Segment]] = [:]
        for f in ex.frames {
            guard let p = try? Packet.decode(f.bytes, link: target.link.linkType) else { continue }
            byTuple[Tuple(targetPort: p.tcp.sourcePort, testerPort: p.tcp.destinationPort), default: []].append(p.tcp.segment)
        }
        for (k, (lane, step)) in work.enumerated() {
            let r = callOf[k].map { ex.results[$0] }
            lane.track(step, acceptSucceeded: r?.errno == 0)
            judge(lane, step, before[k], transitions[k], byTuple[lane.tuple] ?? [], ex.states[lane.tuple] ?? nil, r)
        }
    }

    func judge(_ lane: Lane, _ step: FuzzStep, _ stateBefore: TCPState, _ tr: Transition?, _ raw: [Segment], _ observedState: TCPState?, _ result: CallResult?) {
        let v = lane.oracle.judge(&lane.model, tr, raw: raw, observedState: observedState, reportsWindowShrink: reportsWindowShrink)
        lane.log.append(StepLog(step: step, stateBefore: stateBefore, expected: v.expected, expectedState: v.expectedState, observed: v.observed,
                                observedState: observedState, callResult: result, rules: tr.map { $0.chain >= 0 ? spec.chains[$0.chain].rules : [] } ?? [],
                                cell: tr?.cell ?? -1, event: tr?.event, mismatches: v.mismatches))
    }
}
