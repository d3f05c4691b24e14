import Cases
import Checker
import Core
import Foundation
import Fuzzer
import Generator
import Model
import Oracle
import Spec
import Targets
import TestSupport
import Testing

/// Timed expectations on hand-made segments and times: a retransmission inside its window, early, late, missing,
/// the backoff across expiries, and TIME-WAIT shown by the state; each verdict classed by the profile's timing lines.
@Suite("Oracle: timers judged against their windows")
struct TimedJudgementTests {
    static let testerISN: UInt32 = 1_000_000
    static let iss: UInt32 = 7_000
    static let margin = TimerMargin(early: 0.01, late: 0.02, lateFraction: 0.1, source: "test")

    /// SYN-RECEIVED after a passive OPEN and a SYN, the SYN,ACK judged as sent at time 10.
    static func synReceived(_ spec: CompiledSpec = compiled9293) -> (TCPModel, StepOracle, [TimerName: Double], Segment) {
        var m = TCPModel(spec: spec, configuration: .init(receiveWindow: 65535))
        _ = m.apply(.call(.openPassive))
        let tr = m.apply(.segment(Segment(seq: testerISN, ctl: .syn, window: 65535)))
        var o = StepOracle(testerISN: testerISN)
        let synack = Segment(seq: iss, ack: testerISN &+ 1, ctl: [.syn, .ack], window: 64240)
        let v = o.judge(&m, tr, raw: [synack], observedState: .synReceived, reportsWindowShrink: true)
        #expect(v.mismatches.isEmpty)
        #expect(m.timers.isRunning(.retransmission))
        return (m, o, [.retransmission: 10], synack)
    }

    static func timer(_ v: StepOracle.WaitVerdict) -> TimerMismatch? {
        for case .timer(let t) in v.verdict.mismatches { return t }
        return nil
    }

    @Test("a SYN,ACK retransmitted 1 s after it was sent conforms to rfc9293's initial RTO; the expiry is recorded")
    func inWindow() {
        var (m, o, starts, synack) = Self.synReceived()
        let w = o.judgeWait(&m, from: 10.001, to: 11.2, starts: starts, raw: [TimedSegment(time: 11.004, segment: synack)], observedState: .synReceived,
                            margin: Self.margin, reportsWindowShrink: true)
        #expect(w.verdict.mismatches.isEmpty, "\(w.verdict.mismatches)")
        #expect(w.expiries.count == 1)
        #expect(abs((w.expiries.first?.after ?? 0) - 1.004) < 1e-9)
        #expect(w.transitions.first?.event == .retransmissionTimeout)
        // The timer restarted at the retransmission, backed off once: the next is due 2 s later.
        #expect(w.starts[.retransmission] == 11.004)
        #expect(m.expiry(.retransmission)?.lower == 2)
        starts = w.starts
        let w2 = o.judgeWait(&m, from: 11.2, to: 13.3, starts: starts, raw: [TimedSegment(time: 13.01, segment: synack)], observedState: .synReceived,
                             margin: Self.margin, reportsWindowShrink: true)
        #expect(w2.verdict.mismatches.isEmpty, "\(w2.verdict.mismatches)")
        #expect(m.expiry(.retransmission)?.lower == 4)
    }

    @Test("past an orphan's retransmission limit the stack may give up or go on: a retransmission then (trimmed to the window, SHLD-16) is taken, the state not judged")
    func pastOrphanLimit() {
        var (m, o, starts, synack) = Self.synReceived()
        _ = m.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 65535)))
        #expect(m.stateName == "ESTABLISHED")
        let send = m.apply(.call(.send(10)))
        let data = Segment(seq: Self.iss &+ 1, ack: Self.testerISN &+ 1, ctl: .ack, window: 64240, dataLength: 10)
        _ = o.judge(&m, send, raw: [data], observedState: nil, reportsWindowShrink: true)
        starts[.retransmission] = 20
        // One expiry judged; then the limit (one retry) is reached: the next copy comes later, or never.
        let w = o.judgeWait(&m, from: 20.001, to: 21.4, starts: starts, raw: [TimedSegment(time: 21.0, segment: data)], observedState: .established,
                            margin: Self.margin, reportsWindowShrink: true, retransmissionLimit: 1)
        #expect(w.verdict.mismatches.isEmpty, "\(w.verdict.mismatches)")
        starts = w.starts
        var (m2, o2) = (m, o)
        // The tester's window is one octet now: the stack sends one octet of it again (RFC 9293 §3.8.6.2.2 SHLD-16).
        var trimmed = data
        trimmed.dataLength = 1
        let again = o.judgeWait(&m, from: 21.4, to: 23.5, starts: starts, raw: [TimedSegment(time: 23.01, segment: trimmed)], observedState: .established,
                                margin: Self.margin, reportsWindowShrink: true, retransmissionLimit: 1)
        #expect(again.verdict.mismatches.isEmpty, "\(again.verdict.mismatches)")
        #expect(again.timersUnknown)
        let gone = o2.judgeWait(&m2, from: 21.4, to: 23.5, starts: starts, raw: [], observedState: .closed,
                                margin: Self.margin, reportsWindowShrink: true, retransmissionLimit: 1)
        #expect(gone.verdict.mismatches.isEmpty, "\(gone.verdict.mismatches)")
        _ = synack
    }

    @Test("a retransmission before its window is early: under rfc9293 the initial RTO's SHOULD deviates, naming MUST-18")
    func early() throws {
        var (m, o, starts, synack) = Self.synReceived()
        let w = o.judgeWait(&m, from: 10.001, to: 11.2, starts: starts, raw: [TimedSegment(time: 10.3, segment: synack)], observedState: .synReceived,
                            margin: Self.margin, reportsWindowShrink: true)
        let t = try #require(Self.timer(w))
        #expect(t.kind == .early)
        #expect(t.timer == .retransmission)
        #expect(abs(t.after - 0.3) < 1e-9)
        #expect(t.window.timings == [.rtoInitial])
        #expect(t.description.contains("expired early"))
        let j = Judgement(spec: compiled9293, chain: w.transitions[0].chain, chainRules: compiled9293.chains[w.transitions[0].chain].rules, outputRules: [],
                          mismatches: w.verdict.mismatches)
        #expect(j.verdictClass == .deviates)
        #expect(j.requirements.map(\.description) == ["MUST-18"])
        // The signature names the timer, how, and the timings: one finding per fault.
        let sig = Signature(state: .synReceived, decidedBy: "rto.synack", expected: w.verdict.expected, expectedState: .synReceived, observed: w.verdict.observed,
                            observedState: .synReceived, mismatches: w.verdict.mismatches, judgement: j)
        #expect(sig.description.contains("timer retransmission early (rto.initial)"))
        _ = starts
    }

    @Test("no backoff: the second retransmission 1 s after the first is early against the doubled RTO, and violates MUST-18")
    func noBackoff() throws {
        var (m, o, starts, synack) = Self.synReceived()
        let w = o.judgeWait(&m, from: 10.001, to: 11.2, starts: starts, raw: [TimedSegment(time: 11.0, segment: synack)], observedState: .synReceived,
                            margin: Self.margin, reportsWindowShrink: true)
        #expect(w.verdict.mismatches.isEmpty)
        starts = w.starts
        let w2 = o.judgeWait(&m, from: 11.2, to: 12.2, starts: starts, raw: [TimedSegment(time: 12.0, segment: synack)], observedState: .synReceived,
                             margin: Self.margin, reportsWindowShrink: true)
        let t = try #require(Self.timer(w2))
        #expect(t.kind == .early)
        #expect(t.window.timings == [.rtoInitial, .rtoBackoff])
        let j = Judgement(spec: compiled9293, chain: -1, chainRules: [], outputRules: [], mismatches: w2.verdict.mismatches)
        #expect(j.verdictClass == .violates)
        #expect(j.requirements.map(\.description) == ["MUST-18"])
    }

    @Test("late beyond the margin, missing once the window and margin passed in silence; silence inside the window decides nothing")
    func lateAndMissing() throws {
        do {
            var (m, o, starts, synack) = Self.synReceived()
            // Window 1 s, late margin 0.02 + 0.1 × 1 s: 1.12 s is the last time that conforms.
            let ok = o.judgeWait(&m, from: 10.001, to: 11.5, starts: starts, raw: [TimedSegment(time: 11.11, segment: synack)], observedState: .synReceived,
                                 margin: Self.margin, reportsWindowShrink: true)
            #expect(ok.verdict.mismatches.isEmpty, "\(ok.verdict.mismatches)")
            (m, o, starts, _) = Self.synReceived()
            let late = o.judgeWait(&m, from: 10.001, to: 11.5, starts: starts, raw: [TimedSegment(time: 11.2, segment: synack)], observedState: .synReceived,
                                   margin: Self.margin, reportsWindowShrink: true)
            #expect(Self.timer(late)?.kind == .late)
            #expect(abs((Self.timer(late)?.margin ?? 0) - 0.12) < 1e-9)
        }
        var (m, o, starts, _) = Self.synReceived()
        let inside = o.judgeWait(&m, from: 10.001, to: 11.05, starts: starts, raw: [], observedState: .synReceived, margin: Self.margin, reportsWindowShrink: true)
        #expect(inside.verdict.mismatches.isEmpty)
        #expect(inside.transitions.isEmpty)
        let missing = o.judgeWait(&m, from: 11.05, to: 11.5, starts: starts, raw: [], observedState: .synReceived, margin: Self.margin, reportsWindowShrink: true)
        let t = try #require(Self.timer(missing))
        #expect(t.kind == .missing)
        #expect(t.description.contains("did not expire"))
        _ = starts
    }

    /// ESTABLISHED → FIN-WAIT-1 → the peer's FIN,ACK acknowledging ours: TIME-WAIT, its timer started at time 20.
    static func timeWait(_ spec: CompiledSpec) -> (TCPModel, StepOracle, [TimerName: Double]) {
        var (m, o, _, _) = synReceived(spec)
        let ack = m.apply(.segment(Segment(seq: testerISN &+ 1, ack: 1, ctl: .ack, window: 65535)))
        _ = o.judge(&m, ack, raw: [], observedState: .established, reportsWindowShrink: true)
        let close = m.apply(.call(.close))
        _ = o.judge(&m, close, raw: [Segment(seq: iss &+ 1, ack: testerISN &+ 1, ctl: [.fin, .ack], window: 64240)], observedState: .finWait1, reportsWindowShrink: true)
        let fin = m.apply(.segment(Segment(seq: testerISN &+ 1, ack: 2, ctl: [.fin, .ack], window: 65535)))
        _ = o.judge(&m, fin, raw: [Segment(seq: iss &+ 2, ack: testerISN &+ 2, ctl: .ack, window: 64240)], observedState: .timeWait, reportsWindowShrink: true)
        #expect(m.spec.states[m.state].state == .timeWait)
        #expect(m.timers.isRunning(.timeWait))
        return (m, o, [.timeWait: 20])
    }

    @Test("TIME-WAIT shows in the state: gone before 2 MSL is early (violates MUST-13), still there after is missing, gone after conforms")
    func timeWait() throws {
        do {
            var (m, o, starts) = Self.timeWait(compiled9293)
            let w = o.judgeWait(&m, from: 20, to: 50, starts: starts, raw: [], observedState: .closed, margin: Self.margin, reportsWindowShrink: true)
            let t = try #require(Self.timer(w))
            #expect(t.kind == .early)
            #expect(t.timer == .timeWait)
            let j = Judgement(spec: compiled9293, chain: -1, chainRules: [], outputRules: [], mismatches: w.verdict.mismatches)
            #expect(j.verdictClass == .violates)
            #expect(j.requirements.map(\.description) == ["MUST-13"])
            #expect(!w.verdict.mismatches.contains { if case .state = $0 { true } else { false } })
            _ = starts
        }
        do {
            var (m, o, starts) = Self.timeWait(compiled9293)
            let w = o.judgeWait(&m, from: 20, to: 290, starts: starts, raw: [], observedState: .timeWait, margin: Self.margin, reportsWindowShrink: true)
            #expect(Self.timer(w)?.kind == .missing)
            _ = starts
        }
        var (m, o, starts) = Self.timeWait(compiled9293)
        let w = o.judgeWait(&m, from: 20, to: 290, starts: starts, raw: [], observedState: .closed, margin: Self.margin, reportsWindowShrink: true)
        #expect(w.verdict.mismatches.isEmpty, "\(w.verdict.mismatches)")
        #expect(w.expiries.map(\.timer) == [.timeWait])
        // Inside the window (here 4 min exactly, ± the margin) the state may be either.
        (m, o, starts) = Self.timeWait(compiled9293)
        let edge = o.judgeWait(&m, from: 20, to: 260.03, starts: starts, raw: [], observedState: .timeWait, margin: Self.margin, reportsWindowShrink: true)
        #expect(edge.verdict.mismatches.isEmpty, "\(edge.verdict.mismatches)")
    }
}

/// Timer faults on the reference stack's virtual clock: found by the fuzzer, and the kept case shows the fault again
/// through the case runner (the `>` lines after a wait say what was due), while the clean stack passes it.
@Suite("Timer faults on the reference target")
struct TimerFaultTests {
    @Test("each timer fault's case fails on the faulty stack and passes on the clean one", arguments: ReferenceFault.timerFaults)
    func caseReplays(name: String) throws {
        let fault = try #require(ReferenceFault.named(name))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-timer-\(name)-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try FuzzerTests.fuzz(ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, fault: fault), cases: FuzzerTests.budget(name), corpus: dir)
        let d = try #require(s.findings.first { $0.signature.description.contains("| timer ") }, "\(name): \(s.findings.map(\.signature))")
        #expect(d.log.last?.mismatches.contains { if case .timer = $0 { true } else { false } } == true)
        let text = try String(contentsOfFile: try #require(d.casePath), encoding: .utf8)
        #expect(text.contains("\nwait "))
        let (file, diags) = CaseParser.parse(path: d.casePath!, text: text)
        #expect(diags.isEmpty, "\(diags)")
        var o = CaseRunner.Options()
        o.timeout = 0.05
        o.settle = 0.01
        let faulty = CaseRunner(target: try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, fault: fault), file: file, options: o).run()
        // The case runner charges each step the round time the run's virtual clock charged (`Target.roundCost`):
        // timewait-no-restart's kept case waits 119.999 s, then 120 s, and shows the fault only with those rounds.
        #expect(!faulty.passed, "\(name): the case does not show the fault\n\(text)")
        // The clean stack with the application setting the fault needs (keep-alives on).
        let cleanStack = fault.keepalive == nil ? ReferenceTarget(spec: compiled9293)
            : try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, keepalive: fault.keepalive)
        let clean = CaseRunner(target: cleanStack, file: file, options: o).run()
        // Known defect (stop 44): a case's `>` lines after a wait are what is due by its end at the timers' latest, and
        // the runner fails anything more — but a clean stack may fire a timer that is not due yet, within its window.
        // A wait ending inside such a window (here the keep-alive's third probe and give-up) makes a kept case fail the
        // clean stack. Seen once the spec's new classes moved this seeded run's path; the fix is for the corpus writer
        // (a wait that ends where no timer is optional) or the case format (optional lines).
        let optionalTimer = clean.steps.contains { if case .mismatch(let r) = $0.verdict { r.contains { $0.hasPrefix("the target's timers sent more") } } else { false } }
        if name == "keepalive-one-probe", optionalTimer {
            withKnownIssue("a wait ends inside a keep-alive probe's window: the clean stack's early probe is flagged") {
                #expect(clean.passed, "\(name): the clean stack fails the case: \(clean.steps.filter(\.failed).map { "\($0.line): \($0.observed)" })\n\(text)")
            }
        } else {
            #expect(clean.passed, "\(name): the clean stack fails the case: \(clean.steps.filter(\.failed).map { "\($0.line): \($0.observed)" })\n\(text)")
        }
    }
}

/// Delayed ACKs (RFC 9293 §3.8.6.3) on the reference stack's virtual clock: one that holds each ACK 200 ms is
/// judged conforming however its ACKs cross the tester's later segments; `ack-delay-late` (600 ms) is MUST-40.
@Suite("Delayed ACKs on the reference target")
struct DelayedAckTests {
    @Test("a stack that delays its ACKs within the bound shows no divergence")
    func withinBound() throws {
        let t = try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, ackDelay: ReferenceTarget.defaultAckDelay)
        let s = try FuzzerTests.fuzz(t, cases: 3000)
        #expect(s.findings.isEmpty, "\(s.findings.map { "\($0.signature) \($0.casePath ?? "")" })")
        #expect(s.waits > 100, "waits \(s.waits)")
    }

    @Test("an ACK held 600 ms violates MUST-40, and the kept case shows it")
    func pastBound() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-delack-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, fault: ReferenceFault.named("ack-delay-late"))
        let s = try FuzzerTests.fuzz(t, cases: 2000, corpus: dir)
        let d = try #require(s.findings.min { $0.steps < $1.steps }, "not found")
        #expect(s.findings.allSatisfy { $0.signature.description.contains("timer delayed-ack") }, "\(s.findings.map(\.signature))")
        #expect(d.signature.requirements.map(\.description) == ["MUST-40"], "\(d.signature)")
        let text = try String(contentsOfFile: try #require(d.casePath), encoding: .utf8)
        #expect(text.contains("option delayed-acks on") && text.contains("# ^ delayed-ack: "), "\(text)")
    }
}

extension DelayedAckTests {
    static func delaying() throws -> ReferenceTarget {
        try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory, ackDelay: ReferenceTarget.defaultAckDelay)
    }

    @Test("the stack's one ACK is the step's own challenge ACK when the held ACK's window puts the step's RST inside (not the held ACK, leaving the challenge missing)")
    func heldAckIsStepsOwn() throws {
        let steps: [FuzzStep] = [
            .call(.openPassive),
            .segment(Segment(seq: 0, ctl: .syn, window: 65535)),
            .segment(Segment(seq: 1, ack: 1, ctl: [.fin, .ack], window: 65535)),
            // Outside the window the SYN,ACK offered (RCV.NXT 2, edge 65536), inside the one the held ACK offers.
            .segment(Segment(seq: 65536, ack: 2, ctl: [.fin, .rst, .ack], window: 65535, dataLength: 1460)),
        ]
        let r = try #require(try Fuzzer.replay(steps, spec: compiled9293, on: try Self.delaying()))
        #expect(r.log.count == steps.count)
        let last = try #require(r.log.last)
        #expect(!last.diverged, "\(last.expected) / \(last.observed): \(last.mismatches)")
        #expect(last.observed.count == 1 && last.observed.first?.ctl == .ack, "\(last.observed)")
        #expect(last.expiries.contains { $0.timed == .delayedAck }, "\(last.expiries)")
    }
}

/// The planner's check that a stack restarts a timer whose expiry sends nothing (TIME-WAIT on the peer's FIN again).
@Suite("Planner: a silent timer's restart checked")
struct RestartCheckTests {
    static let margin = TimedJudgementTests.margin

    /// TIME-WAIT after a passive open, the application's close and the tester's FIN,ACK (relative numbers: the
    /// tester's FIN is octet 1, RCV.NXT 2).
    static func timeWait() -> Connection {
        var c = Connection(spec: compiled9293, testerISN: 0, offered: nil)
        for s in FuzzStep.passiveOpen + [.call(.close), .segment(Segment(seq: 1, ack: 2, ctl: [.ack, .fin], window: 65535))] { c.apply(s) }
        return c
    }

    @Test("a TIME-WAIT restart is checked: a wait that ages the timer, the FIN again, a wait that ends after the first window and before the restarted one")
    func restartCheck() throws {
        let c = Self.timeWait()
        #expect(compiled9293.states[c.model.state].state == .timeWait)
        let planner = Planner(spec: compiled9293, seed: 1)
        planner.timerMargin = Self.margin
        // The peer's FIN again ends at RCV.NXT: it restarts the timer, whose expiry sends nothing. An older FIN is no
        // retransmission of it and restarts nothing (RFC 793 p.73; FreeBSD's tcp_twcheck alike).
        let again = try #require(c.modelInput(.segment(Segment(seq: 1, ack: 2, ctl: [.ack, .fin], window: 65535))))
        let older = try #require(c.modelInput(.segment(Segment(seq: 0, ack: 2, ctl: [.ack, .fin], window: 65535))))
        #expect(planner.silentRestart(by: again, on: c.model) == .timeWait)
        #expect(planner.silentRestart(by: older, on: c.model) == nil)
        // Just started: age it first, about half way (2 MSL is 240 s under rfc9293), nothing expiring meanwhile.
        let setup = try #require(planner.restartSetupWait(for: .timeWait, on: c.model, age: 0, span: 0))
        #expect(setup > 100 && setup < 140, "\(setup)")
        #expect(planner.restartCheckWait(for: .timeWait, on: c.model, age: 0, span: 0) == nil)
        // Restarted after it: the check ends past 240 s from the first start (with the late margin) and before 240 s
        // from the restart (less the early margin).
        let check = try #require(planner.restartCheckWait(for: .timeWait, on: c.model, age: 0, span: setup))
        #expect(setup + check > 240 + Self.margin.late(after: 240) && check < 240 - Self.margin.early, "\(check)")
        #expect(planner.restartSetupWait(for: .timeWait, on: c.model, age: setup, span: setup) == nil)
        // Beyond the longest wait allowed: none.
        planner.maxWait = 60
        #expect(planner.restartCheckWait(for: .timeWait, on: c.model, age: 0, span: setup) == nil)
    }
}
