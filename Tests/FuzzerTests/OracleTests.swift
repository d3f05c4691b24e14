import Core
import Model
import Oracle
import Spec
import TestSupport
import Testing

/// The step oracle on hand-made segments, without a target or privileges: numbering from the target's ISN,
/// retransmissions, typed mismatches, the window edge, and the signatures' stable text.
@Suite("Oracle: one step judged")
struct OracleTests {
    static let testerISN: UInt32 = 1_000_000

    /// A model that has taken a passive OPEN and a SYN (its SYN,ACK pending), and the oracle beside it.
    static func synReceived() -> (TCPModel, StepOracle, Transition) {
        var m = TCPModel(spec: compiled9293, configuration: .init(receiveWindow: 65535))
        _ = m.apply(.call(.openPassive))
        let tr = m.apply(.segment(Segment(seq: testerISN, ctl: .syn, window: 65535)))
        return (m, StepOracle(testerISN: testerISN), tr)
    }

    @Test("the target's first SYN binds its ISN; both sides are numbered from their ISNs; a match has no mismatch")
    func numbering() {
        var (m, o, tr) = Self.synReceived()
        let iss: UInt32 = 0xFFFF_FF00
        let v = o.judge(&m, tr, raw: [Segment(seq: iss, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 64240)],
                        observedState: .synReceived, reportsWindowShrink: true)
        #expect(o.targetISN == iss)
        #expect(v.mismatches.isEmpty, "\(v.mismatches)")
        #expect(v.observed.map(\.seq) == [0])
        #expect(v.observed.map(\.ack) == [1])
        #expect(v.expectedState == .synReceived)
    }

    @Test("a segment the target sent before is a retransmission, not a new output")
    func retransmission() {
        var (m, o, tr) = Self.synReceived()
        let synack = Segment(seq: 5000, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 64240)
        _ = o.judge(&m, tr, raw: [synack], observedState: nil, reportsWindowShrink: true)
        // A RECEIVE with nothing queued sends nothing; the SYN,ACK again in the same step is not an output.
        let tr2 = m.apply(.call(.receive(10)))
        let v = o.judge(&m, tr2, raw: [synack], observedState: nil, reportsWindowShrink: true)
        #expect(v.observed.isEmpty)
        #expect(v.mismatches.isEmpty, "\(v.mismatches)")
    }

    @Test("text sent again with the ACK of now is a retransmission where no rule expects its like; the step's own answer is still judged")
    func resendWithNewAck() {
        var (m, o, tr) = Self.synReceived()
        _ = o.judge(&m, tr, raw: [Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 64240)], observedState: nil, reportsWindowShrink: true)
        _ = m.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 65535)))
        let send = m.apply(.call(.send(10)))
        _ = o.judge(&m, send, raw: [Segment(seq: 1, ack: Self.testerISN &+ 1, ctl: .ack, window: 64240, dataLength: 10)], observedState: nil, reportsWindowShrink: true)
        // Ten octets arrive; in the same round the stack's timer sent its text again, acknowledging them already.
        let data = m.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 65535, dataLength: 10)))
        let again = Segment(seq: 1, ack: Self.testerISN &+ 11, ctl: .ack, window: 64230, dataLength: 10)
        let ack = Segment(seq: 11, ack: Self.testerISN &+ 11, ctl: .ack, window: 64230)
        var o2 = o, m2 = m
        let v = o.judge(&m, data, raw: [again, ack], observedState: nil, reportsWindowShrink: true)
        #expect(v.mismatches.isEmpty, "\(v.mismatches)")
        #expect(v.resent.map(\.seq) == [1])
        // The acknowledgment the step asks for, with a wrong ACK, is still a divergence.
        let wrong = Segment(seq: 11, ack: Self.testerISN &+ 10, ctl: .ack, window: 64230)
        let w = o2.judge(&m2, data, raw: [wrong], observedState: nil, reportsWindowShrink: true)
        #expect(!w.mismatches.isEmpty)
    }

    /// ESTABLISHED after a passive open with the tester's window closed, ten octets waiting and the probe timer
    /// running; the core before the next input, for `probeBefore`.
    static func closedWindowWithText(_ spec: CompiledSpec) -> (TCPModel, StepOracle, TCPModel.Core) {
        var m = TCPModel(spec: spec, configuration: .init(receiveWindow: 65535))
        var o = StepOracle(testerISN: testerISN)
        _ = m.apply(.call(.openPassive))
        let tr = m.apply(.segment(Segment(seq: testerISN, ctl: .syn, window: 65535)))
        _ = o.judge(&m, tr, raw: [Segment(seq: 0, ack: testerISN &+ 1, ctl: [.syn, .ack], window: 64240)], observedState: nil, reportsWindowShrink: true)
        _ = m.apply(.segment(Segment(seq: testerISN &+ 1, ack: 1, ctl: .ack, window: 0)))
        _ = m.apply(.call(.send(10)))
        #expect(m.windowProbeDue && m.timers.isRunning(.retransmission))
        return (m, o, m.core)
    }

    @Test("a probe of new data sent before the step's input is the model's own expiry first: judged as a resend, the input after it")
    func probeBeforeInput() {
        var (m, o, core) = Self.closedWindowWithText(compiled9293)
        // The tester reopens its window; before the stack took that, its timer sent one octet (rfc9293's probe).
        let input = Input.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 65535))
        var step = m.apply(input)
        let probe = Segment(seq: 1, ack: Self.testerISN &+ 1, ctl: .ack, window: 64240, dataLength: 1)
        let rest = Segment(seq: 2, ack: Self.testerISN &+ 1, ctl: .ack, window: 64240, dataLength: 9)
        if let p = o.probeBefore(&m, core: core, input: input, raw: [probe, rest]) { step = p.transition } else { Issue.record("the probe was not taken") }
        let v = o.judge(&m, step, raw: [probe, rest], observedState: nil, reportsWindowShrink: true)
        #expect(v.mismatches.isEmpty, "\(v.mismatches)")
        #expect(v.resent.map(\.seq) == [1])
        // A first segment that is not that probe leaves the model alone.
        var (m3, o3, tr3) = Self.synReceived()
        _ = o3.judge(&m3, tr3, raw: [Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 64240)], observedState: nil, reportsWindowShrink: true)
        #expect(o3.probeBefore(&m3, core: m3.core, input: input, raw: [rest]) == nil)
    }

    @Test("linux: an empty probe (an ACK below SND.UNA) sent before an input that opens the window a little is the expiry's, not the input's answer")
    func emptyProbeBeforeInput() throws {
        var (m, o, core) = Self.closedWindowWithText(try Repository.spec("linux"))
        // A window of one octet: ten octets still do not fit (whole segments), so the input draws nothing itself.
        let input = Input.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 1))
        var step = m.apply(input)
        let probe = Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: .ack, window: 64240)
        if let p = o.probeBefore(&m, core: core, input: input, raw: [probe]) { step = p.transition } else { Issue.record("the probe was not taken") }
        let v = o.judge(&m, step, raw: [probe], observedState: nil, reportsWindowShrink: true)
        #expect(v.mismatches.isEmpty, "\(v.mismatches)")
        #expect(v.resent.count == 1)
    }

    @Test("what differs is typed: the segments and the state, in that order, with the one text rendering")
    func typedMismatches() {
        var (m, o, tr) = Self.synReceived()
        let v = o.judge(&m, tr, raw: [Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: [.rst, .ack], window: 0)],
                        observedState: .listen, reportsWindowShrink: true)
        guard v.mismatches.count == 2, case .segments(let e, let ob) = v.mismatches[0], case .state(let es, let os) = v.mismatches[1] else {
            Issue.record("expected segments then state, got \(v.mismatches)")
            return
        }
        #expect(e.map(\.ctl) == [[.syn, .ack]])
        #expect(ob.map(\.ctl) == [[.rst, .ack]])
        #expect(es == .synReceived && os == .listen)
        #expect(v.mismatches[1].description == "state: expected SYN-RECEIVED, observed LISTEN")
        #expect(v.mismatches[0].description == "segments: expected S. 0:0(0) ack 1, observed R. 0:0(0) ack 1")
    }

    @Test("a right edge moved left is one typed finding, with the scale it implies; off, the model follows the furthest edge")
    func windowShrink() {
        var (m, o, tr) = Self.synReceived()
        _ = o.judge(&m, tr, raw: [Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 64240)], observedState: nil, reportsWindowShrink: true)
        let tr2 = m.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 65535)))
        // 64240 >> 10 = 62: the stack scales by 2^10 without having agreed it.
        let v = o.judge(&m, tr2, raw: [Segment(seq: 1, ack: Self.testerISN &+ 1, ctl: .ack, window: 62)], observedState: nil, reportsWindowShrink: true)
        #expect(v.mismatches.contains(.windowShrink(by: 64240 - 62, window: 62, ack: 1, inferredShift: 10)), "\(v.mismatches)")
        #expect(o.inferredWindowShift == 10)
        #expect(Signature(state: .established, decidedBy: "x", expected: [], expectedState: .established, observed: [], observedState: nil,
                          mismatches: v.mismatches.filter(\.isWindowShrink)) == .windowShrink)
    }

    /// Linux after a simultaneous open (Corpus/linux/README.md): its SYN,ACK announced Window Scale 7, the tester
    /// agreed none, and its next ACK advertises 149 (19072 scaled), its window having grown meanwhile — no exact
    /// 2^k match. The announced scale explains it; judged unscaled, every later segment inside the real window
    /// would be "unacceptable" and expected to draw an ACK the stack rightly does not send.
    @Test("a window that also grew: the scale the target announced on its SYN explains the apparent shrink")
    func announcedShift() {
        var (m, o, tr) = Self.synReceived()
        o.announcedWindowShift = 7
        _ = o.judge(&m, tr, raw: [Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 16060)], observedState: nil, reportsWindowShrink: true)
        let tr2 = m.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 65535, dataLength: 1459)))
        let v = o.judge(&m, tr2, raw: [Segment(seq: 1, ack: Self.testerISN &+ 1460, ctl: .ack, window: 149)], observedState: nil, reportsWindowShrink: true)
        #expect(StepOracle.impliedShift(offered: 16061 - 1460, advertised: 149) == nil)
        #expect(o.inferredWindowShift == 7)
        #expect(v.mismatches.contains(.windowShrink(by: 16061 - (1460 + 149), window: 149, ack: 1460, inferredShift: 7)), "\(v.mismatches)")
        #expect(m[.rcvWnd] == 149 << 7, "RCV.WND \(m[.rcvWnd])")
        // Without the announcement, nothing is inferred: the shrink stands as advertised.
        var (m2, o2, tr3) = Self.synReceived()
        _ = o2.judge(&m2, tr3, raw: [Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 16060)], observedState: nil, reportsWindowShrink: true)
        let tr4 = m2.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 65535, dataLength: 1459)))
        _ = o2.judge(&m2, tr4, raw: [Segment(seq: 1, ack: Self.testerISN &+ 1460, ctl: .ack, window: 149)], observedState: nil, reportsWindowShrink: true)
        #expect(o2.inferredWindowShift == 0)
    }

    @Test("a run of text cut short, its FIN with it, is a congestion window's: the rest is expected when acknowledgments come")
    func heldBackByCongestionWindow() {
        var (m, o, tr) = Self.synReceived()
        _ = o.judge(&m, tr, raw: [Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 64240)], observedState: nil, reportsWindowShrink: true)
        _ = m.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 65535)))
        var n = m, on = o
        // 1000 octets queued, ten segments of 48 sent (Linux's initial window of ten segments, at a 48-octet MSS).
        let send = m.apply(.call(.send(1000)))
        let ten = (0..<10).map { Segment(seq: 1 + UInt32($0) * 48, ack: Self.testerISN &+ 1, ctl: [.ack, .psh], window: 64240, dataLength: 48) }
        let v = o.judge(&m, send, raw: ten, observedState: .established, reportsWindowShrink: true)
        #expect(v.mismatches.isEmpty, "\(v.mismatches)")
        #expect(v.heldBack?.octets == 520 && v.heldBack?.fin == false)
        #expect(m[.sndNxt] == m[.iss] &+ 481 && m[.sndQueue] == 520)
        // Their acknowledgment opens the window: the rest is what is expected now, and a stack that sends nothing
        // more diverges.
        let ack = m.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 481, ctl: .ack, window: 65535)))
        var m2 = m, o2 = o
        let rest = (0..<11).map { Segment(seq: 481 + UInt32($0) * 48, ack: Self.testerISN &+ 1, ctl: [.ack, .psh], window: 64240, dataLength: $0 == 10 ? 40 : 48) }
        #expect(o.judge(&m, ack, raw: rest, observedState: .established, reportsWindowShrink: true).mismatches.isEmpty)
        #expect(m[.sndQueue] == 0)
        #expect(!o2.judge(&m2, ack, raw: [], observedState: .established, reportsWindowShrink: true).mismatches.isEmpty)
        // The rest of the text and the FIN of a CLOSE go in one transmission; the stack sends the text alone and
        // the FIN on the next acknowledgment.
        _ = on.judge(&n, n.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 50))), raw: [], observedState: nil, reportsWindowShrink: true)
        let first = n.apply(.call(.send(100)))
        #expect(on.judge(&n, first, raw: [Segment(seq: 1, ack: Self.testerISN &+ 1, ctl: .ack, window: 64240, dataLength: 50)], observedState: nil,
                         reportsWindowShrink: true).mismatches.isEmpty)
        _ = n.apply(.call(.close))
        let open = n.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 51, ctl: .ack, window: 65535)))
        let w = on.judge(&n, open, raw: [Segment(seq: 51, ack: Self.testerISN &+ 1, ctl: .ack, window: 64240, dataLength: 50)], observedState: .finWait1,
                         reportsWindowShrink: true)
        #expect(w.mismatches.isEmpty, "\(w.mismatches)")
        #expect(w.heldBack?.octets == 0 && w.heldBack?.fin == true)
        let last = n.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 101, ctl: .ack, window: 65535)))
        let f = on.judge(&n, last, raw: [Segment(seq: 101, ack: Self.testerISN &+ 1, ctl: [.ack, .fin], window: 64240)], observedState: .finWait1,
                         reportsWindowShrink: true)
        #expect(f.mismatches.isEmpty, "\(f.mismatches)")
        // Text that starts elsewhere is not a shorter run of the expected one.
        var (m3, o3, tr3) = Self.synReceived()
        _ = o3.judge(&m3, tr3, raw: [Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 64240)], observedState: nil, reportsWindowShrink: true)
        _ = m3.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: .ack, window: 65535)))
        let s3 = m3.apply(.call(.send(100)))
        #expect(!o3.judge(&m3, s3, raw: [Segment(seq: 2, ack: Self.testerISN &+ 1, ctl: .ack, window: 64240, dataLength: 50)], observedState: nil,
                          reportsWindowShrink: true).mismatches.isEmpty)
    }

    @Test("signatures render as the baselines and corpus cases key them")
    func signatureText() {
        let s = Signature(state: .synSent, decidedBy: "synsent.ack.ok › synsent.rst.inexact", expected: [], expectedState: .synSent, observed: [],
                          observedState: .closed, mismatches: [.state(expected: .synSent, observed: .closed)])
        #expect(s.description == "SYN-SENT | synsent.ack.ok › synsent.rst.inexact | expected none → SYN-SENT | observed none → CLOSED")
        let ack = Signature(state: .synSent, decidedBy: "r", expected: [Segment(seq: 1, ack: 2, ctl: .ack)], expectedState: .established,
                            observed: [Segment(seq: 1, ack: 1, ctl: .ack)], observedState: .established,
                            mismatches: [.segments(expected: [], observed: [])])
        #expect(ack.description == "SYN-SENT | r | expected . → ESTABLISHED | observed . (ack differ) → ESTABLISHED")
        let crash = Signature(state: .established, decidedBy: "r", expected: [], expectedState: .established, observed: [], observedState: nil,
                              mismatches: [.failure(.exited, detail: "the agent exited (status 134) after 12 requests\nmore")])
        #expect(crash.description == "any state | target-crash: the agent exited (status N) after N requests")
        #expect(Signature.windowShrink.description == "any state | window | the target moved the right edge of its receive window left (RFC 9293 §3.8.6.2.2 SHLD-14)")
    }

    /// A passive connection reset before it was accepted: RFC 9293 deletes the TCB (CLOSED), and the application's
    /// listener, still open, answers for the port (LISTEN). Found by the main job as "CLOSE-WAIT | RST,ACK
    /// seq=exact | … | expected none → CLOSED | observed none → LISTEN | violates MUST-66": tcpspec's mistake, the
    /// kernel had reset the child and its listener answered the state lookup.
    @Test("a connection that ends before accept leaves the port listening while the application's listener is open",
          arguments: [true, false])
    func listenerAnswersAfterReset(listenerOpen: Bool) {
        var (m, o, tr) = Self.synReceived()
        o.listenerOpen = listenerOpen
        _ = o.judge(&m, tr, raw: [Segment(seq: 0, ack: Self.testerISN &+ 1, ctl: [.syn, .ack], window: 64240)], observedState: .synReceived,
                    reportsWindowShrink: true)
        let fin = m.apply(.segment(Segment(seq: Self.testerISN &+ 1, ack: 1, ctl: [.fin, .ack], window: 65535)))
        let v1 = o.judge(&m, fin, raw: [Segment(seq: 1, ack: Self.testerISN &+ 2, ctl: .ack, window: 64240)], observedState: .closeWait,
                         reportsWindowShrink: true)
        #expect(v1.mismatches.isEmpty, "\(v1.mismatches)")
        let rst = m.apply(.segment(Segment(seq: Self.testerISN &+ 2, ack: 1, ctl: [.rst, .ack], window: 65535)))
        let v2 = o.judge(&m, rst, raw: [], observedState: .listen, reportsWindowShrink: true)
        if listenerOpen {
            #expect(v2.expectedState == .listen && v2.mismatches.isEmpty, "\(v2.mismatches)")
            // A new SYN opens a new incarnation through the listener, with an ISS of its own.
            let syn = m.apply(.segment(Segment(seq: Self.testerISN &+ 100_000, ctl: .syn, window: 65535)))
            let v3 = o.judge(&m, syn, raw: [Segment(seq: 777_777, ack: Self.testerISN &+ 100_001, ctl: [.syn, .ack], window: 64240)],
                             observedState: .synReceived, reportsWindowShrink: true)
            #expect(v3.mismatches.isEmpty, "\(v3.mismatches)")
        } else {
            // Without a listener the tuple is CLOSED: LISTEN there is a divergence.
            #expect(v2.expectedState == .closed)
            #expect(v2.mismatches.contains(.state(expected: .closed, observed: .listen)), "\(v2.mismatches)")
        }
    }
}
