import Core
import Foundation
import Link
import Generator
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
    /// Segments the target sent again meanwhile (retransmissions, not judged: see `StepOracle.Verdict.resent`).
    public var resent: [Segment] = []
    public var observedState: TCPState?
    public var callResult: CallResult?
    /// The rules that decided the input (indices into the spec's rules).
    public var rules: [Int]
    public var cell: Int
    public var event: EventKind?
    public var mismatches: [Mismatch]
    /// The rules whose `send` made each expected output, and the chain that decided (-1: none): what a
    /// divergence is attributed to (`Judgement`).
    public var outputRules: [Int] = []
    public var chain: Int = -1
    /// A choice this step told apart, and the alternative the stack took.
    public var choice: (name: String, alternative: ChoiceBook.Alternative)?
    /// The target's segments differed from the model's only where the peer does not look (a reset's ACK).
    public var equivalentDifference = false
    /// The input's numbers lie exactly 2^31 from a register its classes compare them with (`TCPModel.halfWayApart`):
    /// a divergence of its segments or state is unspecified.
    public var halfWay = false
    /// A wait whose only surplus is keep-alive probes sent while text was queued behind a closed window with nothing
    /// outstanding (`TCPModel.keepaliveWhileQueued`): permitted by MUST-26's letter, so unspecified.
    public var keepaliveQueued = false
    /// The timers a wait expired within their windows, with when.
    public var expiries: [TimedExpiry] = []
    /// A wait judged after the model's timers stopped being the stack's (`Lane.timersUnknown`) in which no expiry
    /// the model has came: neither its absence nor the state then is judged, so it decides no timer test.
    public var untimedSilence = false
    /// The stack had not yet acknowledged the text or FIN this step took (a target that delays ACKs): the model's
    /// ACK was left out of `expected`, to be judged when it comes (`Session.settleHeldAcks`).
    public var heldAck = false
    /// This step decided the acknowledgments held since the steps at these indices (of the lane's log): they came,
    /// or their bound passed (a `delayed-ack` expiry or mismatch here).
    public var settlesAcksOf: [Int] = []
    /// For a delayed ACK judged here past its bound: the step that took what it acknowledges (one element), whose
    /// finding it is (`Fuzzer.signature`).
    public var owedBy: [StepLog] = []

    public var diverged: Bool { !mismatches.isEmpty }
    /// The odd option list the step's segment carried (`OptionOddity`), if it was a segment.
    public var oddity: OptionOddity { if case .segment(let s) = step { s.oddity } else { .none } }
}

/// An acknowledgment a stack that delays ACKs still owes (RFC 9293 §3.8.6.3): the model sent it at once for the
/// text or FIN a step took; the stack had not by that step's barrier.
struct HeldAck {
    /// SEG.ACK the model sent (the tester's numbers as sent): any segment acknowledging that far settles it.
    var ack: UInt32
    /// SEG.SEQ the model sent (the target's numbers from its ISS). The held ACK goes at SND.NXT as it is when it
    /// goes (at or past this: text may have gone meanwhile); a pure ACK below it (a zero-window or keep-alive probe,
    /// at SND.UNA−1 or SND.NXT−1) carries the acknowledgment but is not the held one.
    var seq: UInt32
    /// When the segment it acknowledges went out (frame time).
    var since: Double
    /// The index in the lane's log of the step that took it.
    var step: Int
}

/// One connection under test: what the generator knows of it (the model and the socket), the oracle's view of
/// the real one, and what it is for.
final class Lane {
    /// What a lane is for, with the data each purpose needs.
    enum Purpose {
        /// A fuzz case (`index`: the run's case number when it started).
        case fuzz(index: Int)
        /// A conformance test: the index of its input class; the step that carried the input once drawn, or why
        /// none could be.
        case conform(test: Int, carriedAt: Int?, missed: String?)
        /// Replayed alone (minimization, differential comparison).
        case replay
    }

    let id: Int
    let tuple: Tuple
    var connection: Connection
    /// The judgement of this connection's steps (its numbering, what the target sent, its window).
    var oracle: StepOracle
    var log: [StepLog] = []
    var plan: [PlanItem] = []
    var purpose: Purpose
    /// When each running timer was last (re)started, in frame time (the capture's clock): a timed expiry is
    /// measured from the frame that started it.
    var timerStarts: [TimerName: Double] = [:] {
        didSet {
            for t in TimerName.allCases {
                if timerStarts[t] == nil { timerFirstStarts[t] = nil } else if oldValue[t] == nil { timerFirstStarts[t] = timerStarts[t] }
            }
        }
    }
    /// When each running timer was first started since it was last stopped (a restart keeps this, an expiry ends
    /// it): the window a stack that ignores a restart still keeps (`Planner.restartCheckWait`).
    var timerFirstStarts: [TimerName: Double] = [:]
    /// A wait in progress: when it ends (on the target's clock), when it began (frame time), and what the target
    /// sent this connection meanwhile.
    var wait: (step: FuzzStep, due: Double, from: Double, frames: [TimedSegment])?
    /// The target sent something again outside a wait (a fast retransmission, or a timer that expired between
    /// steps): the model's timers no longer know its timers, so later waits judge no timing.
    var timersUnknown = false {
        didSet { if timersUnknown, !oldValue { timersUnknownAt = steps.count } }
    }
    /// The step (1-based) after which the timers became unknown, for reports.
    var timersUnknownAt: Int?
    /// A conformance test whose input is a wait that can only catch its timer expiring early
    /// (`Planner.earlyCheckWait`): what the report says when it did not.
    var earlyCheck: String?
    /// When the tester last sent this connection a segment (frame time).
    var lastInput: Double?
    /// The model's SND.UNA after the last step (an acknowledgment moves it).
    var sndUna: UInt32?
    /// The acknowledgments the stack still owes, oldest first, with a target that delays ACKs.
    var heldAcks: [HeldAck] = []

    /// What the tester offers on its SYNs and what the connection agreed (the tester's options and wire windows;
    /// the target's windows scaled and its options judged).
    var agreement: OptionAgreement
    /// What the target's options broke, until the step that judges those frames takes it.
    var optionFaults: [Mismatch] = []
    /// A conformance lane sent text to hold before drawing its class (`Planner.heldTextSetup`), once.
    var heldTextSetUp = false

    init(id: Int, tuple: Tuple, spec: CompiledSpec, testerISN: UInt32, offered: Set<String>?, purpose: Purpose,
         options: TesterOptions = .mssOnly, ipv6: Bool = false) {
        self.id = id
        self.tuple = tuple
        self.purpose = purpose
        connection = Connection(spec: spec, testerISN: testerISN, offered: offered)
        oracle = StepOracle(testerISN: testerISN)
        agreement = OptionAgreement(offer: options, ipv6: ipv6)
        _ = connection.model.adopt(.sendMSS(agreement.segmentText))
    }

    /// The step as the model takes it: a segment's window field (as the step, the log and a case file write it,
    /// RFC 9293's SEG.WND as sent) read as the target must, in units of 2^shift once a Window Scale is agreed
    /// (RFC 7323 §2.3; a SYN's never scaled).
    func modelInput(_ step: FuzzStep) -> Input? {
        guard case .segment(var s) = step else { return connection.modelInput(step) }
        s.window = agreement.testerWindow(s.window, syn: s.ctl.contains(.syn))
        return connection.modelInput(.segment(s))
    }

    /// Takes the target's segments for this connection, in order: the agreement scales their windows and judges
    /// their options (kept for the step that judges them).
    func observe(_ segs: [TimedSegment]) -> [TimedSegment] {
        // The target's state as the model has it: from SYN-RECEIVED on no segment but a SYN moves TS.Recent.
        let handshakeDone = connection.model.spec.states[connection.model.state].state != .synReceived
        let out = segs.map { t in
            var t = t
            for m in agreement.observe(&t, handshakeDone: handshakeDone) where !optionFaults.contains(m) { optionFaults.append(m) }
            return t
        }
        // The model's RFC 7323 shifts follow the SYNs' agreement (a new incarnation's SYN decides again).
        let (send, receive) = (UInt32(agreement.testerShift), UInt32(agreement.targetShift))
        if model[.sndWindShift] != send || model[.rcvWindShift] != receive {
            _ = model.adopt(.windowShifts(send: UInt8(send), receive: UInt8(receive)))
        }
        if model.configuration.sendMSS != agreement.segmentText { _ = model.adopt(.sendMSS(agreement.segmentText)) }
        if (model[.sackOK] == 1) != agreement.sackAgreed { _ = model.adopt(.sackPermitted(agreement.sackAgreed)) }
        if (model[.tsOK] == 1) != agreement.timestampsAgreed { _ = model.adopt(.timestampsAgreed(agreement.timestampsAgreed)) }
        return out
    }

    var model: TCPModel {
        get { connection.model }
        _modify { yield &connection.model }
    }
    var steps: [FuzzStep] { connection.steps }
    var testerISN: UInt32 { oracle.testerISN }
    var targetISN: UInt32? { oracle.targetISN }
    var diverged: Bool { log.last?.diverged ?? false }

    /// Whether `target` may have given this connection up by now: an orphan (the application closed the socket)
    /// whose retransmission timer may have expired `orphanRetries` + 1 times since its known start. Linux then
    /// ends it without a segment (tcp_write_timeout → tcp_write_err) and answers later segments as for no
    /// connection, which the model cannot know: the case ends there, unjudged. The earliest such moment is the
    /// sum of the expiries' lower bounds, less the margin; an orphan whose timers are unknown may be gone at once.
    func mayHaveBeenGivenUp(by target: any Target) -> Bool {
        // The target's sysctls are read last: this runs before every step of every lane.
        guard case .closed = connection.socket, model.timers.isRunning(.retransmission), let limit = target.orphanRetries else { return false }
        guard !timersUnknown, let start = timerStarts[.retransmission] else { return true }
        var m = model
        var earliest = start - target.timerMargin.early
        for _ in 0...max(0, limit - Int(m.timers.backoffs)) {
            guard let w = m.expiry(.retransmission) else { return false }
            earliest += w.lower ?? 0
            _ = m.apply(.timeout(Timeout(.retransmission)))
        }
        return target.frameNow >= earliest
    }

    /// Conformance runs: the step that carried the test's input, if drawn.
    var carriedAt: Int? {
        if case .conform(_, let at, _) = purpose { return at }
        return nil
    }

    /// Seconds since timer `t` was last (re)started and since it was first started, at frame time `now`; nil
    /// when it does not run or the model no longer knows the stack's timers.
    func timerAge(_ t: TimerName, now: Double) -> (age: Double, span: Double)? {
        guard !timersUnknown, let s = timerStarts[t], let f = timerFirstStarts[t] else { return nil }
        return (now - s, now - f)
    }

    /// Conformance runs: the next step carries the test's input.
    func carryInput() {
        if case .conform(let test, _, let missed) = purpose { purpose = .conform(test: test, carriedAt: steps.count, missed: missed) }
    }
}

/// Frames captured by one session for connections another session of the same run drives: a replay alone runs
/// in the middle of a run, and what the run's waiting lanes were sent meanwhile must reach them, not be dropped.
final class FrameStash {
    private var byTuple: [Tuple: [TimedSegment]] = [:]
    /// Tuples in the order they were first stashed: frames for connections nobody comes back for (sent after a
    /// release) are dropped oldest first, so a long run's stash stays small.
    private var order: [Tuple] = []
    static let capacity = 4096

    func put(_ t: Tuple, _ segs: [TimedSegment]) {
        if byTuple[t] == nil { order.append(t) }
        byTuple[t, default: []] += segs
        if order.count > 2 * Self.capacity {
            order.removeAll { byTuple[$0] == nil }
            let excess = order.count - Self.capacity
            if excess > 0 {
                for old in order.prefix(excess) { byTuple[old] = nil }
                order.removeFirst(excess)
            }
        }
    }

    func take(_ t: Tuple) -> [TimedSegment] { byTuple.removeValue(forKey: t) ?? [] }

    /// Forgets a connection that is gone (released).
    func drop(_ t: Tuple) { byTuple[t] = nil }
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
    /// The choices the RFC leaves open under the profile, and what the stack chose so far.
    var choices: ChoiceRun?

    /// Shared by the run's sessions (see `FrameStash`).
    let stash: FrameStash

    init(spec: CompiledSpec, target: Target, keepFrames: Bool, stash: FrameStash = FrameStash()) {
        self.spec = spec
        self.target = target
        self.keepFrames = keepFrames
        self.stash = stash
    }

    /// Lanes waiting, by tuple: the frames each round captures for them are kept for the wait's judgement.
    private(set) var parked: [Tuple: Lane] = [:]
    /// The target's timers' measurement error.
    var margin: TimerMargin { target.timerMargin }

    /// Starts a lane's wait: it takes no part in rounds until `due` (the scheduler resumes it then with the same
    /// step, and the round judges it).
    func park(_ lane: Lane, _ step: FuzzStep, seconds: Double) {
        lane.wait = (step, target.clock.now + seconds, target.frameNow, [])
        parked[lane.tuple] = lane
    }

    /// A waiting lane whose wait will not be judged (the stack failed meanwhile).
    func unpark(_ lane: Lane) {
        lane.wait = nil
        parked[lane.tuple] = nil
    }

    /// The tester's segment `s` (the step's numbering) as a frame, its options from the lane's agreement (which
    /// moves the tester's timestamp clock on).
    /// `reuse`: sent to a connection in TIME-WAIT (`OptionAgreement.prepare`).
    func absolute(_ s: Segment, _ lane: Lane, reuse: Bool = false) -> [UInt8] {
        var a = s
        a.seq = lane.testerISN &+ s.seq
        a.ack = s.ctl.contains(.ack) ? (lane.targetISN ?? 0) &+ s.ack : 0
        var tcp = TCPHeader(sourcePort: lane.tuple.testerPort, destinationPort: lane.tuple.targetPort, seq: a.seq, ack: a.ack, flags: s.ctl,
                            window: UInt16(clamping: s.window), urgentPointer: UInt16(clamping: s.urgentPointer))
        tcp.payload = [UInt8](repeating: 0x78, count: Int(s.dataLength))
        tcp.options = lane.agreement.prepare(a, reuse: reuse)
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
        var cores: [TCPModel.Core] = []
        var inputs: [Input?] = []
        for (lane, step) in work {
            before.append(spec.states[lane.model.state].state)
            cores.append(lane.model.core)
            if case .wait = step {
                // The end of a wait: nothing to send, the barrier collects the last frames and the state.
                inputs.append(nil)
                transitions.append(nil)
                callOf.append(nil)
                lane.connection.steps.append(step)
                continue
            }
            let input = lane.modelInput(step)
            inputs.append(input)
            transitions.append(input.map { lane.model.apply($0) })
            if case .segment(let s) = step {
                batch.append(absolute(s, lane, reuse: before.last == .timeWait))
                callOf.append(nil)
            } else if let sc = step.socketCall {
                callOf.append(calls.count)
                calls.append((sc, lane.tuple))
            } else {
                callOf.append(nil)
            }
            lane.connection.steps.append(step)
        }
        let sentAt = target.frameNow  // a frame time, beside the capture's
        let ex: Exchange
        do {
            ex = try target.exchange(calls: calls, inject: batch, states: work.map { $0.0.tuple })
        } catch let f as TargetFailure {
            // The stack failed as a program: every connection of the round ends here with the failure as its
            // observation (which one caused it is found by replaying each alone).
            for (k, (lane, step)) in work.enumerated() {
                let tr = transitions[k]
                lane.log.append(log(step, before[k], tr, expected: tr.map { Array($0.outputs).map(\.segment) } ?? [],
                                    expectedState: spec.states[lane.model.state].state, observed: [], observedState: nil, result: nil,
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
        var byTuple: [Tuple: [TimedSegment]] = [:]
        var announced: [Tuple: Int] = [:]
        for f in ex.frames {
            guard let p = try? Packet.decode(f.bytes, link: target.link.linkType) else { continue }
            let t = Tuple(targetPort: p.tcp.sourcePort, testerPort: p.tcp.destinationPort)
            byTuple[t, default: []].append(TimedSegment(time: f.time, segment: p.tcp.segment, options: TCPOptionScan.scan(p.tcp),
                                                        whole: p.tcp.checksumValid == true))
            // The window scale the target announces on its SYN: the scale it may go on to apply although the
            // tester never agreed one (the oracle's evidence for an edge that seems to move left).
            if p.tcp.segment.ctl.contains(.syn) {
                announced[t] = 0
                for case .windowScale(let k) in p.tcp.options { announced[t] = Int(min(k, 14)) }
            }
        }
        let endedAt = target.frameNow
        // Waiting lanes keep what was sent to them for the end of their wait; what another session's connections
        // were sent waits for that session.
        for (t, segs) in byTuple {
            if let lane = parked[t], lane.wait != nil, !work.contains(where: { $0.0 === lane }) {
                lane.wait!.frames += lane.observe(segs)
            } else if !work.contains(where: { $0.0.tuple == t }) {
                stash.put(t, segs)
            }
        }
        for r in releasing { stash.drop(r) }
        for (lane, _) in work {
            let all = stash.take(lane.tuple) + (byTuple[lane.tuple] ?? [])
            if !all.isEmpty { byTuple[lane.tuple] = lane.observe(all) }
        }
        for (t, lane) in parked where lane.wait != nil {
            let earlier = stash.take(t)
            if !earlier.isEmpty { lane.wait!.frames += lane.observe(earlier) }
        }
        for (k, (lane, step)) in work.enumerated() {
            if let a = announced[lane.tuple] { lane.oracle.announcedWindowShift = a }
            lane.oracle.agreedWindowShift = lane.agreement.windowScaleAgreed ? Int(lane.agreement.targetShift) : nil
            if case .wait = step {
                var raw = (lane.wait?.frames ?? []) + (byTuple[lane.tuple] ?? [])
                let settled = settleHeldAcks(lane, &raw, sentAt: nil, end: endedAt, answering: nil)
                judgeWait(lane, step, before[k], raw, ex.states[lane.tuple] ?? nil, end: endedAt)
                note(settled, lane)
                noteOptionFaults(lane)
                continue
            }
            let r = callOf[k].map { ex.results[$0] }
            lane.connection.track(step, acceptSucceeded: r?.errno == 0)
            lane.oracle.listenerOpen = lane.connection.listenerOpen
            var raw = byTuple[lane.tuple] ?? []
            let pureAck = transitions[k]?.outputs.first { Session.isPureAck($0.segment) }?.segment.ack
            let windowBefore = lane.model.tcb[.rcvWnd]
            let (rawIn, heldIn) = (raw, lane.heldAcks)
            var settled = settleHeldAcks(lane, &raw, sentAt: sentAt, end: endedAt, answering: pureAck)
            if lane.model.tcb[.rcvWnd] != windowBefore, let input = inputs[k] {
                // A held ACK showed the target's window only now (its advertisement came in this round): the step's
                // input is classified again against it, from where the step began.
                var pre = lane.model
                pre.core = cores[k]
                lane.oracle.adoptWindow(&pre)
                transitions[k] = pre.apply(input)
                lane.model = pre
                // Classified so, the step may owe a pure ACK of its own (a challenge ACK of a RST now in the window)
                // that the stack's one ACK is, rather than the held one: which it is, is decided again.
                let own = transitions[k]?.outputs.first { Session.isPureAck($0.segment) }?.segment.ack
                if own != pureAck {
                    (raw, lane.heldAcks) = (rawIn, heldIn)
                    settled = settleHeldAcks(lane, &raw, sentAt: sentAt, end: endedAt, answering: own)
                }
            }
            // The ACK of what this step took, not sent yet: held, judged when it comes.
            let holding = transitions[k].flatMap { owedAck($0, lane, before: cores[k]) }.flatMap { a in
                raw.contains { acknowledges($0.segment, a) } ? nil : a
            }
            if case .segment = step { lane.lastInput = sentAt }
            let adopted = judge(lane, step, before[k], transitions[k], raw.map(\.segment), ex.states[lane.tuple] ?? nil, r, core: cores[k], input: inputs[k],
                                sentAt: sentAt, holding: holding)
            if let holding, var a = transitions[k]?.outputs.first(where: { Session.isPureAck($0.segment) && $0.segment.ack == holding })?.segment {
                let n = lane.log.count - 1
                lane.heldAcks.append(HeldAck(ack: holding, seq: a.seq, since: sentAt, step: n))
                lane.log[n].heldAck = true
                // The case still says the model's ACK: a replay waits for it as for any expected segment.
                a.ack &-= lane.testerISN
                lane.log[n].expected.append(a)
            }
            note(settled, lane)
            if lane.agreement.sackAgreed, let input = inputs[k], let held = Session.heldOutOfOrder(input, before: cores[k], after: lane.model),
               let m = lane.agreement.judgeFirstBlock(held: held, answers: raw) {
                lane.optionFaults.append(m)
            }
            noteOptionFaults(lane)
            // The timers the step the model went on with started (an alternative the oracle took: a choice's other
            // alternative, a timer crossing the input, a segment with an illegal option length dropped).
            noteTimers(lane, step, adopted, raw, sentAt: sentAt)
        }
    }

    /// Writes what the lane's frames broke in their options (`Lane.observe`) into the step that judged them.
    /// Not judged live (the offline checker does): a SYN,ACK with timestamps the tester's SYN did not offer. Linux
    /// sends one in a simultaneous open (its SYN,ACK repeats its own SYN's options); a live option fault ends the
    /// case like any divergence, and this one ended every way into SYN-RECEIVED the suite had (conform linux: 400
    /// of its tests unreachable).
    func noteOptionFaults(_ lane: Lane) {
        guard !lane.optionFaults.isEmpty, !lane.log.isEmpty else { return }
        let n = lane.log.count - 1
        for m in lane.optionFaults where !lane.log[n].mismatches.contains(m) { lane.log[n].mismatches.append(m) }
        lane.optionFaults = []
    }

    static func isPureAck(_ s: Segment) -> Bool { s.ctl == .ack && s.dataLength == 0 }

    /// The text of the step's segment the model now holds out of order (its part inside the window as it was, absolute),
    /// when the segment did not move RCV.NXT: what RFC 2018 §4's first SACK block of the ACK it draws must contain.
    static func heldOutOfOrder(_ input: Input, before: TCPModel.Core, after: TCPModel) -> OptionAgreement.SentRange? {
        guard case .segment(let s) = input, s.dataLength > 0, !s.ctl.contains(.syn), !s.ctl.contains(.rst) else { return nil }
        var pre = after
        pre.core = before
        let nxt = pre[.rcvNxt], edge = pre[.rcvNxt] &+ pre[.rcvWnd]
        guard after[.rcvNxt] == nxt, TCPModel.seqLess(nxt, s.seq), TCPModel.seqLess(s.seq, edge),
              after.heldRange(holding: s.seq) != nil else { return nil }
        let end = s.seq &+ s.dataLength
        return OptionAgreement.SentRange(start: s.seq, end: TCPModel.seqLess(edge, end) ? edge : end)
    }

    /// Whether the target's segment `s` acknowledges up to `ack` or beyond (both in the model's numbering: the
    /// tester's sequence numbers as sent).
    func acknowledges(_ s: Segment, _ ack: UInt32) -> Bool {
        s.ctl.contains(.ack) && !TCPModel.seqLess(s.ack, ack)
    }

    /// The pure ACK a step's transition sends for text or a FIN it took (RCV.NXT moved), when the target may
    /// delay it and the profile bounds the delay (`timing delayed-ack`): its SEG.ACK.
    func owedAck(_ tr: Transition, _ lane: Lane, before: TCPModel.Core) -> UInt32? {
        guard target.delaysAcknowledgments, lane.model.spec.timings[.delayedAck]?.upper != nil,
              lane.model.core.receiveNext != before.receiveNext else { return nil }
        return tr.outputs.first { Session.isPureAck($0.segment) }?.segment.ack
    }

    /// What became of a held acknowledgment: a mismatch or a timed expiry, and the log index of the step that held it
    /// (nil: a window mismatch of what a held ACK advertised, the deciding step's own).
    typealias SettledAck = (mismatch: Mismatch?, expiry: TimedExpiry?, heldAt: Int?)

    /// Decides the acknowledgments the lane's stack holds back, from what it sent (`raw`, frame times). Each is
    /// settled by the first segment acknowledging that far; when that is a pure ACK that answers nothing of this
    /// step — sent before the step's input (`sentAt`; a wait has none), or acknowledging other than the step's
    /// own pure ACK (`answering`) — it is a held one: taken out of `raw`. Each is timed from the segment it
    /// acknowledges against `timing delayed-ack` and the late margin; none by then is a missing one. A connection
    /// reset or gone owes none.
    func settleHeldAcks(_ lane: Lane, _ raw: inout [TimedSegment], sentAt: Double?, end: Double, answering: UInt32?) -> [SettledAck] {
        guard !lane.heldAcks.isEmpty else { return [] }
        let bound = lane.model.spec.timings[.delayedAck]?.upper ?? 0
        let window = ExpiryWindow(lower: nil, upper: bound, timings: [.delayedAck])
        let late = margin.late(after: bound)
        func mismatch(_ h: HeldAck, _ kind: TimerMismatch.Kind, after: Double) -> Mismatch {
            .timer(TimerMismatch(kind: kind, timed: .delayedAck, window: window, after: after, margin: late, marginSource: margin.source,
                                 what: "\(h.ack &- lane.testerISN)"))
        }
        var out: [SettledAck] = []
        var taken: [Segment] = []
        var i = 0
        while i < raw.count, let h = lane.heldAcks.first {
            let s = raw[i]
            guard acknowledges(s.segment, h.ack) else { i += 1; continue }
            if s.segment.ctl.contains(.rst) {
                lane.heldAcks.removeAll()
                break
            }
            let covered = lane.heldAcks.prefix { acknowledges(s.segment, $0.ack) }
            lane.heldAcks.removeFirst(covered.count)
            for h in covered {
                let after = s.time - h.since
                out.append(after > bound + late ? (mismatch(h, .late, after: after), nil, h.step)
                           : (nil, TimedExpiry(timed: .delayedAck, window: window, after: after, margin: late), h.step))
            }
            let seq = s.segment.seq &- (lane.targetISN ?? 0)
            if Session.isPureAck(s.segment), covered.contains(where: { !TCPModel.seqLess(seq, $0.seq) }), sentAt.map({ s.time < $0 }) ?? true || answering != s.segment.ack {
                taken.append(raw.remove(at: i).segment)
            } else {
                i += 1
            }
        }
        // What the held ACKs advertised is the target's window all the same (a scale it applies unagreed shows here).
        for m in lane.oracle.followWindow(taken, &lane.model, reportsShrink: reportsWindowShrink) { out.append((m, nil, nil)) }
        if !spec.states[lane.model.state].synchronized { lane.heldAcks.removeAll() }
        while let h = lane.heldAcks.first, end - h.since > bound + late {
            lane.heldAcks.removeFirst()
            out.append((mismatch(h, .missing, after: end - h.since), nil, h.step))
        }
        return out
    }

    /// Writes a held acknowledgment's verdict into the log entry of the step that decided it.
    func note(_ settled: [SettledAck], _ lane: Lane) {
        guard !lane.log.isEmpty else { return }
        let n = lane.log.count - 1
        for x in settled {
            // (A window the held ACK advertised: this step's own finding.)
            guard let held = x.heldAt else {
                if let m = x.mismatch { lane.log[n].mismatches.append(m) }
                continue
            }
            if let m = x.mismatch {
                lane.log[n].mismatches.append(m)
                if lane.log[n].owedBy.isEmpty, held != n { lane.log[n].owedBy = [lane.log[held]] }
            }
            if let e = x.expiry { lane.log[n].expiries.append(e) }
            lane.log[n].settlesAcksOf.append(held)
        }
    }

    /// The transition without the pure ACK the stack still holds (`ack`), every copy of it (two rules of one input
    /// may each acknowledge): judged when it comes.
    static func withoutHeld(_ tr: Transition?, _ ack: UInt32?) -> Transition? {
        guard var t = tr, let ack else { return tr }
        while let i = t.outputs.firstIndex(where: { isPureAck($0.segment) && $0.segment.ack == ack }) { t.outputs.remove(at: i) }
        return t
    }

    /// After a step: the timers it (re)started run from the first frame the target sent in answer (the segment
    /// whose retransmission they time), or from the step itself.
    func noteTimers(_ lane: Lane, _ step: FuzzStep, _ tr: Transition?, _ raw: [TimedSegment], sentAt: Double) {
        // Sent again between steps: the stack's timers moved on without the model (a retransmission, or a probe
        // of a closed window, which backs its timer off).
        if lane.log.last?.resent.contains(where: { $0.length > 0 || lane.model.windowProbeDue }) == true { lane.timersUnknown = true }
        // An acknowledgment of something outstanding for long (the tester waited before sending it) is a round-trip
        // sample R the stack's RTO follows: RFC 6298 §2.2 makes the first RTO 3R, above the profile's floor once
        // 3R exceeds it. The model takes every sample as the tester's short round trip: its timers stop knowing.
        let una = lane.model.tcb[.sndUna]
        if let prior = lane.sndUna, prior != una, let s0 = lane.timerStarts[.retransmission],
           let floor = lane.model.spec.timings[.rtoMin]?.lower, 3 * (sentAt - s0) > floor {
            lane.timersUnknown = true
        }
        lane.sndUna = una
        // A segment while a closed window is being probed may restart the stack's probe timer or not (Linux's
        // tcp_ack_probe does, from tcp_ack, which its fast path skips for an ACK of nothing new): not known.
        if case .segment = step, lane.model.windowProbeDue, lane.timerStarts[.retransmission] != nil { lane.timersUnknown = true }
        // A segment a stack may or may not take as a sign of life (RFC 9293 §3.8.4): the keep-alive's start is not known.
        if lane.model.timers.keepaliveUnsure, lane.model.timers.isRunning(.keepalive) { lane.timersUnknown = true }
        guard let tr else { return }
        // Frames stamped before the step was sent (kept from between steps) cannot answer it.
        let from = raw.first { $0.time >= sentAt }?.time ?? sentAt
        for t in TimerName.allCases {
            if tr.timersStarted & (1 << t.rawValue) != 0 { lane.timerStarts[t] = from }
            if !lane.model.timers.isRunning(t) { lane.timerStarts[t] = nil }
        }
    }

    /// Judges the end of a lane's wait: the timers that expired meanwhile, against their windows.
    func judgeWait(_ lane: Lane, _ step: FuzzStep, _ stateBefore: TCPState, _ raw: [TimedSegment], _ observedState: TCPState?, end: Double) {
        let from = lane.wait?.from ?? end
        lane.wait = nil
        parked[lane.tuple] = nil
        let peerSynchronized = spec.states.first { $0.state == stateBefore }?.synchronized ?? false
        if lane.timersUnknown {
            // The model's timers are not the stack's any more: what a timer would send is taken whenever it came,
            // the rest judged as any step's output, no time.
            let rest = lane.oracle.untimedExpiries(&lane.model, raw: raw.map(\.segment))
            let v = lane.oracle.judge(&lane.model, nil, raw: rest, observedState: nil, reportsWindowShrink: reportsWindowShrink, peerSynchronized: peerSynchronized)
            var l = log(step, stateBefore, nil, expected: v.expected, expectedState: v.expectedState, observed: v.observed, observedState: observedState,
                        result: nil, mismatches: v.mismatches)
            l.resent = v.resent
            l.untimedSilence = rest.count == raw.count
            lane.log.append(l)
            return
        }
        // An orphan (the application closed the socket) may be given up after the stack's retries.
        var closed = false
        if case .closed = lane.connection.socket { closed = true }
        let modelBefore = lane.model, oracleBefore = lane.oracle
        func judged(_ model: inout TCPModel, _ oracle: inout StepOracle, margin: TimerMargin) -> StepOracle.WaitVerdict {
            oracle.judgeWait(&model, from: from, to: end, starts: lane.timerStarts, raw: raw, observedState: observedState, margin: margin,
                             reportsWindowShrink: reportsWindowShrink, lastInput: lane.lastInput, retransmissionLimit: closed ? target.orphanRetries : nil)
        }
        var w = judged(&lane.model, &lane.oracle, margin: margin)
        var chose: (String, ChoiceBook.Alternative)?
        if let choices, !w.transitions.isEmpty {
            // A timer whose expiry a choice's rule decides (the form of a zero-window probe, a reset when R2
            // closes) is judged under both alternatives, as a step is (`judge`). The alternative is told by the
            // form of what was sent, whenever it came (a margin no time exceeds); its timing is then judged under
            // the alternative taken. Any expiry of the wait may be the one (R2's follows the retransmissions).
            let chain = w.transitions.filter { $0.chain >= 0 }.flatMap { spec.chains[$0.chain].rules }
            let anyTime = TimerMargin(early: 1e9, late: 1e9, lateFraction: 0, source: "")
            for c in choices.set.choices where chain.contains(where: c.rules.contains) {
                // Timed with the lengths the stack was set to, as the profile is (the application's R2).
                guard let otherSpec = choices.timedOther(c, for: target) else { continue }
                var alt = TCPModel(spec: otherSpec, configuration: modelBefore.configuration)
                alt.core = modelBefore.core
                // (`loose`: the primary misses only what no RFC owes, an expiry of rules all unspecified.)
                func tell(_ m: TimerMargin) -> (primary: Bool, other: Bool, loose: Bool) {
                    var (m1, o1, m2, o2) = (modelBefore, oracleBefore, alt, oracleBefore)
                    let p = judged(&m1, &o1, margin: m)
                    let rules = p.transitions.filter { $0.chain >= 0 }.flatMap { spec.chains[$0.chain].rules }
                    // Only missing expiries, all of rules no RFC owes (not "no rule": an output nothing explains).
                    let loose = !p.verdict.mismatches.isEmpty && !rules.isEmpty && rules.allSatisfy { spec.rules[$0].isUnspecified }
                        && p.verdict.mismatches.allSatisfy { if case .timer(let t) = $0 { t.kind == .missing } else { false } }
                    return (p.verdict.mismatches.isEmpty, judged(&m2, &o2, margin: m).verdict.mismatches.isEmpty, loose)
                }
                var (primaryOK, otherOK, loose) = tell(anyTime)
                if primaryOK && otherOK {
                    // An expiry one alternative has and the other lacks (a keep-alive probe after a half-duplex
                    // close) shows only by its absence once its window has passed: judged with the late margin.
                    (primaryOK, otherOK, loose) = tell(TimerMargin(early: anyTime.early, late: margin.late, lateFraction: margin.lateFraction, source: margin.source))
                }
                guard primaryOK != otherOK else { continue }
                // What only the other alternative explains, where the primary's miss is one no RFC owes (no probe in
                // FIN-WAIT-2: RFC 9293 §3.8.4 names no states), fits the primary as well: it binds nothing and
                // contradicts no binding to the primary; a stack bound to the other is judged under it.
                if !primaryOK, loose, choices.book.binding(c.choice.name)?.bound != .other { continue }
                guard let (alternative, inconsistent) = observe(c, primaryOK: primaryOK, lane, step, stateBefore, chain: chain) else { continue }
                chose = (c.choice.name, alternative)
                if let inconsistent {
                    w.verdict.mismatches = [inconsistent]
                } else if alternative == .other {
                    // Its timing judged under that alternative, from where the wait began.
                    var o2 = oracleBefore
                    w = judged(&alt, &o2, margin: margin)
                    lane.model.core = alt.core
                    lane.oracle = o2
                }
                break
            }
        }
        if w.timersUnknown { lane.timersUnknown = true }
        lane.timerStarts = w.starts
        for t in TimerName.allCases where !lane.model.timers.isRunning(t) { lane.timerStarts[t] = nil }
        // A timer restarted by its own expiry (a retransmission) begins a new window.
        for tr in w.transitions { if let t = TimerName(expiring: tr.event), let s = lane.timerStarts[t] { lane.timerFirstStarts[t] = s } }
        var l = log(step, stateBefore, w.transitions.first, expected: w.verdict.expected, expectedState: w.verdict.expectedState, observed: w.verdict.observed,
                    observedState: observedState, result: nil, mismatches: w.verdict.mismatches)
        l.resent = w.verdict.resent
        l.expiries = w.expiries
        l.choice = chose
        if !w.verdict.mismatches.isEmpty, modelBefore.keepaliveWhileQueued {
            // The segments the model did not expect are all keep-alive probes (SEG.SEQ = SND.NXT-1, no text).
            let probe = modelBefore[.sndNxt] &- 1
            var unexpected = w.verdict.observed
            for e in w.verdict.expected { if let i = unexpected.firstIndex(where: { SegmentKey($0) == SegmentKey(e) }) { unexpected.remove(at: i) } }
            l.keepaliveQueued = !unexpected.isEmpty && unexpected.allSatisfy { $0.seq == probe && $0.dataLength == 0 && !$0.ctl.contains(.syn) && !$0.ctl.contains(.fin) && !$0.ctl.contains(.rst) }
        }
        lane.log.append(l)
    }

    /// Returns the transition the model went on with: `tr`, or the one of the alternative the step was judged
    /// under (its timers are what the lane's timer starts follow).
    @discardableResult
    func judge(_ lane: Lane, _ step: FuzzStep, _ stateBefore: TCPState, _ tr: Transition?, _ raw: [Segment], _ observedState: TCPState?, _ result: CallResult?,
               core: TCPModel.Core, input: Input?, sentAt: Double? = nil, holding: UInt32? = nil) -> Transition? {
        var tr = Session.withoutHeld(tr, holding), core = core
        if let input, let p = lane.oracle.probeBefore(&lane.model, core: core, input: input, raw: raw) {
            // The stack probed before it took the input: the model did too, and its timers are no longer the stack's.
            (core, tr) = (p.core, Session.withoutHeld(p.transition, holding))
            lane.timersUnknown = true
        }
        var adopted = tr
        let oracleBefore = lane.oracle
        // The target's state before the step says whether its peer (the tester) is synchronized.
        let peerSynchronized = spec.states.first { $0.state == stateBefore }?.synchronized ?? false
        var v = lane.oracle.judge(&lane.model, tr, raw: raw, observedState: observedState, reportsWindowShrink: reportsWindowShrink,
                                  peerSynchronized: peerSynchronized)
        // The step judged again on an alternative model `m` that took `tr2` (a choice's other alternative, a timer that
        // crossed the input, …), from the oracle as it was before the step.
        func rejudge(_ m: inout TCPModel, _ tr2: Transition?) -> (StepOracle, StepOracle.Verdict) {
            var o = oracleBefore
            let v = o.judge(&m, tr2, raw: raw, observedState: observedState, reportsWindowShrink: reportsWindowShrink, peerSynchronized: peerSynchronized)
            return (o, v)
        }
        var chose: (String, ChoiceBook.Alternative)?
        if let choices, let tr, tr.chain >= 0, let input {
            // A step decided by a rule of a choice is judged under both alternatives: the one the stack took binds
            // the choice (or, against an earlier binding, is a finding); a stack taking the other alternative
            // conforms, and its connection goes on from the state that alternative leads to.
            let chain = spec.chains[tr.chain].rules
            for c in choices.set.choices where chain.contains(where: c.rules.contains) {
                // An alternative that does not compile is not judged (`spec check` and the CLI report it).
                guard let otherSpec = c.other else { continue }
                var alt = TCPModel(spec: otherSpec, configuration: lane.model.configuration)
                alt.core = core
                let tr2 = Session.withoutHeld(alt.apply(input), holding)
                let (o2, v2) = rejudge(&alt, tr2)
                let primaryOK = v.mismatches.isEmpty, otherOK = v2.mismatches.isEmpty
                guard primaryOK != otherOK else { continue }
                guard let (alternative, inconsistent) = observe(c, primaryOK: primaryOK, lane, step, stateBefore, chain: chain) else { continue }
                if chose == nil { chose = (c.choice.name, alternative) }
                if let inconsistent {
                    v.mismatches = [inconsistent]
                    break
                } else if alternative == .other {
                    lane.model.core = alt.core
                    lane.oracle = o2
                    v = v2
                    adopted = tr2
                    break
                }
                // The stack took the profile's alternative: every other choice this step tells apart is
                // observed too (a SYN in TIME-WAIT shows both RFC 5961 §4 and the reopening choice).
            }
        }
        // A timer that ends the connection without a word (R2; Linux's orphaned FIN-WAIT-2) whose window had opened
        // when the input went out may have expired first: the input and the expiry cross. When the input alone
        // does not explain what was seen, the expiry and then the input may: judged so, and logged as the expiry.
        var crossed: TimedExpiry?
        // (With the model's timers no longer the stack's, any time is its window.)
        if !v.mismatches.isEmpty, chose == nil, let input, let sentAt {
            var before = lane.model
            before.core = core
            for t in TimerName.allCases where before.timers.isRunning(t) {
                guard let w = before.expiry(t) else { continue }
                if !lane.timersUnknown {
                    guard let lo = w.lower, let s0 = lane.timerStarts[t], sentAt - s0 >= lo - margin.early else { continue }
                }
                var m = before
                guard m.apply(.timeout(Timeout(t))).outputs.isEmpty else { continue }
                let tr2 = Session.withoutHeld(m.apply(input), holding)
                let (o2, v2) = rejudge(&m, tr2)
                guard v2.mismatches.isEmpty else { continue }
                (lane.model, lane.oracle, v, tr, adopted) = (m, o2, v2, tr2, tr2)
                crossed = TimedExpiry(timer: t, window: w, after: nil, margin: w.upper.map { margin.late(after: $0) } ?? margin.late)
                break
            }
        }
        // With a Window Scale agreed the advertisement rounds down (RFC 7323 §2.3: SEG.WND = RCV.WND >>
        // Rcv.Wind.Shift): the stack's RCV.WND may reach up to 2^shift - 1 octets past the edge it advertised, so an
        // input the advertised window does not explain is judged under the largest RCV.WND it can stand for too
        // (PyTCP's unrounded window takes a RST at the advertised edge as in the window; Linux keeps its window a
        // multiple of the unit, so this never applies to it).
        if !v.mismatches.isEmpty, chose == nil, crossed == nil, let input, case .segment = input, lane.agreement.targetShift > 0 {
            var m = lane.model
            m.core = core
            _ = m.adopt(.receiveWindow(m[.rcvWnd] &+ (UInt32(1) << UInt32(lane.agreement.targetShift)) &- 1))
            let tr2 = Session.withoutHeld(m.apply(input), holding)
            let (o2, v2) = rejudge(&m, tr2)
            if v2.mismatches.isEmpty { (lane.model, lane.oracle, v, tr, adopted) = (m, o2, v2, tr2, tr2) }
        }
        // An illegal option length (MUST-7) is the stack's to handle short of crashing: besides processing the segment
        // with the options before it (the model's prediction), it may drop the segment or reset the connection (RFC
        // 9293's suggestion: the model's ABORT). A stack that did either conforms, and the model follows it.
        if !v.mismatches.isEmpty, chose == nil, crossed == nil, case .segment(let seg)? = input, seg.oddity.illegalLength {
            for reaction in [nil, UserCall.abort] as [UserCall?] {
                var m = lane.model
                m.core = core
                let tr2 = reaction.flatMap { Session.withoutHeld(m.apply(.call($0)), holding) }
                let (o2, v2) = rejudge(&m, tr2)
                if v2.mismatches.isEmpty {
                    (lane.model, lane.oracle, v, tr, adopted) = (m, o2, v2, tr2, tr2)
                    break
                }
            }
        }
        // Past the model's capacity for held ranges its expectations of the text beyond them are its own limit:
        // such steps are not judged (a case needs more than five separate gaps open at once to get here).
        if core.heldLost { v.mismatches.removeAll() }
        var l = log(step, stateBefore, tr, expected: v.expected, expectedState: v.expectedState, observed: v.observed, observedState: observedState,
                    result: result, mismatches: v.mismatches)
        if let crossed { l.expiries = [crossed] }
        if !v.mismatches.isEmpty, case .segment(let seg)? = input {
            var before = lane.model
            before.core = core
            l.halfWay = before.halfWayApart(seg)
        }
        l.choice = chose
        l.resent = v.resent
        l.equivalentDifference = v.equivalentDifference
        lane.log.append(l)
        return adopted
    }

    /// The stack took one alternative of choice `c` at this step (the profile's when `primaryOK`): the run's book
    /// binds it, or, against an earlier binding, says how it was inconsistent. Nil: the choice does not explain
    /// the step (a rule that does not bind it, the other alternative taken against a binding to the profile's),
    /// which the profile judges.
    func observe(_ c: ChoiceSet.Bound, primaryOK: Bool, _ lane: Lane, _ step: FuzzStep, _ stateBefore: TCPState, chain: [Int]) -> (ChoiceBook.Alternative, Mismatch?)? {
        let alternative: ChoiceBook.Alternative = primaryOK ? .taken : .other
        let place = "\(lane.purposeDescription): \(stateBefore) on \(Session.describe(step))"
        var replaying = false
        if case .replay = lane.purpose { replaying = true }
        if !c.binds(chain: chain) {
            if primaryOK { return (.taken, nil) }
            return choices?.book.explainsOther(c.choice.name, recording: !replaying) == true ? (.other, nil) : nil
        }
        guard let choices, let bound = choices.book.observe(c.choice.name, alternative, at: place, recording: !replaying, binding: c.binds(in: stateBefore)) else {
            return (alternative, nil)
        }
        let said = { (a: ChoiceBook.Alternative) in a == .taken ? c.choice.taken : c.choice.other }
        return (alternative, .inconsistentChoice(choice: c.choice.name, title: c.choice.title, bound: said(bound.bound!), boundAt: bound.firstSeen ?? "?",
                                                observed: said(alternative), rules: chain.filter(c.rules.contains)))
    }

    /// A step's log entry, with what the model's transition says of it (the rules, the input class, the rules
    /// of the outputs, the chain).
    func log(_ step: FuzzStep, _ stateBefore: TCPState, _ tr: Transition?, expected: [Segment], expectedState: TCPState, observed: [Segment],
             observedState: TCPState?, result: CallResult?, mismatches: [Mismatch]) -> StepLog {
        StepLog(step: step, stateBefore: stateBefore, expected: expected, expectedState: expectedState, observed: observed, observedState: observedState,
                callResult: result, rules: tr.map { $0.chain >= 0 ? spec.chains[$0.chain].rules : [] } ?? [], cell: tr?.cell ?? -1, event: tr?.event,
                mismatches: mismatches, outputRules: tr.map { $0.outputs.map(\.rule) } ?? [], chain: tr?.chain ?? -1)
    }
}

extension Session {
    /// A step as logs say it: `< S. 0:0(0) ack 1`, `CLOSE`, `accept`.
    static func describe(_ step: FuzzStep) -> String {
        switch step {
        case .segment(let s): "< " + SegmentKey(s).description + (s.oddity != .none ? " [odd-options \(s.oddity)]" : "")
        case .call(let c): "\(c)"
        case .accept: "accept"
        case .wait(let d): "wait \(Durations.text(d))"
        }
    }
}

extension Lane {
    /// What the lane was for, as a place a report can name: `conformance class 12`, `fuzz case 345`.
    var purposeDescription: String {
        switch purpose {
        case .fuzz(let i): "fuzz case \(i)"
        case .conform(let t, _, _): "conformance class \(t)"
        case .replay: "a replay"
        }
    }
}

/// The choices of a run and what the stack chose: one for the run, shared by its sessions (replays included).
final class ChoiceRun {
    let set: ChoiceSet
    var book = ChoiceBook()
    /// The other alternatives' specs with the timings the target was set to (`Target.judgingSpec`), made once:
    /// each is a compiled spec with its own runtime image.
    private var timed: [String: CompiledSpec] = [:]

    /// Choice `c`'s other alternative, timed as the target runs (the application's R2): what a wait is judged by.
    func timedOther(_ c: ChoiceSet.Bound, for target: Target) -> CompiledSpec? {
        if let s = timed[c.choice.name] { return s }
        guard let other = c.other else { return nil }
        let s = target.judgingSpec(other)
        timed[c.choice.name] = s
        return s
    }

    init(_ set: ChoiceSet) {
        self.set = set
        reset()
    }

    /// Forgets what was observed (conform's warm-up binds nothing for the suite).
    func reset() {
        book = ChoiceBook()
        for c in set.choices {
            book.declare(name: c.choice.name, title: c.choice.title, source: c.choice.source, requirement: c.choice.requirement?.description,
                         taken: c.choice.taken, other: c.choice.other, perStep: c.choice.perStep)
        }
    }
}
