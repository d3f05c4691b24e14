import Foundation
import Link
import Model
import Spec
import Targets
import Wire

/// What one step did, as the model predicted it and as the target did it.
public struct StepLog: Sendable {
    public var step: FuzzStep
    public var stateBefore: String
    public var expected: [Segment]
    public var expectedState: String
    public var observed: [Segment]
    public var observedState: String?
    public var callResult: CallResult?
    /// The rules that decided the input (indices into the spec's rules).
    public var rules: [Int]
    public var cell: Int
    public var event: EventKind?
    public var reasons: [String]

    public var diverged: Bool { !reasons.isEmpty }
}

/// One connection under test: the model's prediction of it and the tester's view of the real one.
final class Lane {
    let id: Int
    var tuple: Tuple
    var model: TCPModel
    var testerISN: UInt32
    var targetISN: UInt32?
    var steps: [FuzzStep] = []
    var log: [StepLog] = []
    var plan: [PlanItem] = []
    var passive = false
    var accepted = false
    var acceptTried = false
    var socketOpen = false
    var seenFromTarget: Set<SegmentKey> = []
    /// The furthest right edge of the target's receive window it has advertised (model numbering).
    var rightEdge: UInt32?
    /// A window scale the target applies without having negotiated one, inferred from its advertisements.
    var inferredWindowShift = 0
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
        self.testerISN = testerISN
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
        l.targetISN = targetISN
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

    /// The k for which `advertised` is `offered` scaled down by 2^k (rounded either way), if any.
    static func impliedShift(offered: UInt32, advertised: UInt32) -> Int? {
        guard advertised > 0, offered > advertised else { return nil }
        for k in 1...14 where advertised == offered >> k || advertised == (offered &+ (1 << k) &- 1) >> k { return k }
        return nil
    }

    /// A step log's reason when the stack failed as a program: its kind first (`target-crash: …`).
    static func failureReason(_ f: TargetFailure) -> String { "\(f.kind.rawValue): \(f.detail)" }

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
        var before: [String] = []
        for (lane, step) in work {
            before.append(spec.states[lane.model.state].name)
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
        let sentAt = Sys.wallClockNow()  // a frame time, beside libpcap's: wall clock
        let ex: Exchange
        do {
            ex = try target.exchange(calls: calls, inject: batch, states: work.map { $0.0.tuple })
        } catch let f as TargetFailure {
            // The stack failed as a program: every connection of the round ends here with the failure as its
            // observation (which one caused it is found by replaying each alone).
            for (k, (lane, step)) in work.enumerated() {
                let tr = transitions[k]
                lane.log.append(StepLog(step: step, stateBefore: before[k], expected: tr.map { Array($0.outputs).map(\.segment) } ?? [],
                                        expectedState: spec.states[lane.model.state].name, observed: [], observedState: nil, callResult: nil,
                                        rules: tr.map { $0.chain >= 0 ? spec.chains[$0.chain].rules : [] } ?? [], cell: tr?.cell ?? -1, event: tr?.event,
                                        reasons: [Session.failureReason(f)]))
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

    func judge(_ lane: Lane, _ step: FuzzStep, _ stateBefore: String, _ tr: Transition?, _ raw: [Segment], _ observedState: String?, _ result: CallResult?) {
        // The target's ISN is bound by its first SYN: the model's numbers for it are relative to 0.
        var observed: [Segment] = []
        // This step's new keys join `seenFromTarget` once the expected side has been judged against the old ones.
        var seenNow: Set<SegmentKey> = []
        for var s in raw {
            if lane.targetISN == nil, s.ctl.contains(.syn) { lane.targetISN = s.seq }
            s.seq = s.seq &- (lane.targetISN ?? 0)
            // A segment seen before (same SEQ, control and length) is a retransmission, not a new output.
            let key = SegmentKey(s)
            if key.occupiesSequence, lane.seenFromTarget.contains(key) || seenNow.contains(key) { continue }
            seenNow.insert(key)
            observed.append(s)
        }
        // The target's receive window, as advertised, is what the model's acceptability test needs. Its right
        // edge must not move left (RFC 9293 §3.8.6.2.2 SHLD-14); a stack that shrinks its advertisement still
        // accepts up to the edge it offered, so the model keeps the furthest edge and the shrink is reported.
        var reasons: [String] = []
        for s in observed where s.ctl.contains(.ack) && !s.ctl.contains(.rst) {
            // A SYN starts a connection (perhaps a new incarnation on the same lane): its window is the first
            // offer, and never scaled (RFC 7323 §2.2).
            if s.ctl.contains(.syn) {
                lane.rightEdge = nil
                lane.inferredWindowShift = 0
            }
            let shift = lane.inferredWindowShift
            var edge = s.ack &+ (s.window << shift)
            // The edge as advertised, before any inferred scale: what the report states.
            let advertisedEdge = edge
            if let old = lane.rightEdge, TCPModel.seqLess(edge, old) {
                // A stack that scales its advertisements without having agreed a window scale (Linux after a
                // simultaneous open, Corpus/linux/README.md) shows the edge it offered divided by 2^k: infer k,
                // so that the rest of the case is judged against the window the stack really uses.
                if shift == 0, let k = Session.impliedShift(offered: old &- s.ack, advertised: s.window) {
                    lane.inferredWindowShift = k
                    edge = s.ack &+ (s.window << k)
                    if !TCPModel.seqLess(edge, old) { lane.rightEdge = edge }
                }
                guard reportsWindowShrink else { continue }
                let inferred = lane.inferredWindowShift != shift ? ", as if scaled by 2^\(lane.inferredWindowShift) without a Window Scale agreed" : ""
                reasons.append("window: the target moved the right edge of its receive window left by \(old &- advertisedEdge) octets (advertised \(s.window) at ACK \(s.ack &- lane.testerISN)\(inferred)); RFC 9293 §3.8.6.2.2 SHLD-14 \"A TCP receiver SHOULD NOT shrink the window\"")
            } else {
                lane.rightEdge = edge
            }
        }
        if let edge = lane.rightEdge {
            let wnd = edge &- lane.model[.rcvNxt]
            if wnd <= 1 << 30 { lane.model.bind(receiveWindow: wnd) }
        }
        // A new incarnation on the lane (LISTEN again, then a SYN) has the target choose a new ISS: the first SYN
        // it sends binds it, and the model's outputs that depend on it move with it.
        var issShift: UInt32 = 0
        if !lane.model.issBound, let syn = observed.first(where: { $0.ctl.contains(.syn) }) {
            issShift = syn.seq &- lane.model[.iss]
            lane.model.bind(iss: syn.seq)
        }
        // A rule's constant SEQ (the closed-state reset's 0) is absolute: number it as the target's side is.
        var expected: [Segment] = []
        for o in tr?.outputs ?? SmallList<Output>() {
            var s = o.segment
            if o.seqConstant { s.seq &-= lane.targetISN ?? 0 }
            if o.seqSymbolic { s.seq &+= issShift }
            // A rule that sends again what the target already sent (a request retransmitting its SYN,ACK) is
            // judged as the observed side is: a retransmission is not a new output.
            let key = SegmentKey(s)
            if key.occupiesSequence, lane.seenFromTarget.contains(key) { continue }
            expected.append(s)
        }
        lane.seenFromTarget.formUnion(seenNow)
        let expectedState = spec.states[lane.model.state].name
        let e = SegmentKey.normalize(expected), o = SegmentKey.normalize(observed)
        if e != o, SegmentKey.coalesced(e) != o {
            reasons.append("segments: expected \(e.isEmpty ? "none" : e.map(\.description).joined(separator: ", ")), observed \(o.isEmpty ? "none" : o.map(\.description).joined(separator: ", "))")
        }
        if let os = observedState, os != expectedState {
            reasons.append("state: expected \(expectedState), observed \(os)")
        }
        // The log numbers acknowledgments from the tester's ISN, as case files do.
        func relative(_ segs: [Segment]) -> [Segment] {
            segs.map { var s = $0; if s.ctl.contains(.ack) { s.ack &-= lane.testerISN }; return s }
        }
        expected = relative(expected)
        observed = relative(observed)
        if !reasons.isEmpty {
            reasons = reasons.map { r in
                guard r.hasPrefix("segments:") else { return r }
                let e2 = SegmentKey.normalize(expected), o2 = SegmentKey.normalize(observed)
                return "segments: expected \(e2.isEmpty ? "none" : e2.map(\.description).joined(separator: ", ")), observed \(o2.isEmpty ? "none" : o2.map(\.description).joined(separator: ", "))"
            }
        }
        lane.log.append(StepLog(step: step, stateBefore: stateBefore, expected: expected, expectedState: expectedState, observed: observed,
                                observedState: observedState, callResult: result, rules: tr.map { $0.chain >= 0 ? spec.chains[$0.chain].rules : [] } ?? [],
                                cell: tr?.cell ?? -1, event: tr?.event, reasons: reasons))
    }
}

