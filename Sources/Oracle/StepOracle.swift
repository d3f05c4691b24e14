import Core
import Model
import Spec

/// The judgement of one connection's steps against the model, as one value: it numbers the target's side from
/// the ISN it chose, recognizes retransmissions, follows the right edge of the target's receive window (and the
/// scale it may apply without having agreed one), binds the target's choices into the model, and compares.
/// Pure: no I/O, no clock; the fuzzer, conformance and differential runs all judge through it, and the tests
/// drive it with hand-made segments, without privileges.
public struct StepOracle: Sendable {
    /// The tester's ISN: the model numbers the tester's side absolutely, case files and logs from this.
    public let testerISN: UInt32
    /// The target's ISN, bound by the first SYN it sends.
    public private(set) var targetISN: UInt32?
    /// What the target has sent (target-relative numbers).
    var seen = SentSegments()
    /// An empty zero-window probe `probeBefore` found ahead of the step's input, for `judge` to take as a resend.
    var heldProbe: Segment?
    /// The furthest right edge of the target's receive window it has advertised (model numbering).
    private var rightEdge: UInt32?
    /// A window scale the target applies without having negotiated one, inferred from its advertisements.
    public private(set) var inferredWindowShift = 0
    /// The Window Scale the target announced on its SYN (RFC 7323 §2.2), if the driver saw one: when the tester
    /// offered none, none is agreed, but a stack that applies its own anyway shows it here.
    public var announcedWindowShift: Int?
    /// The target's shift when both SYNs agreed a Window Scale (`OptionAgreement`): its windows reach the oracle
    /// scaled already, nothing is inferred, and an edge that moves left by less than one unit of 2^shift is the
    /// granularity RFC 7323 §2.4 foresees ("there are instances when a retracted window can be offered"), not a
    /// shrink.
    public var agreedWindowShift: Int?
    /// The application's listener is open still (`TCPModel.listenAgain`): a connection that ends before it is
    /// accepted leaves the port listening, and the state a target reports for the tuple is then LISTEN.
    public var listenerOpen = false

    public init(testerISN: UInt32) {
        self.testerISN = testerISN
    }

    /// A step as judged: both sides in the numbering case files use (SEQ from each side's ISN, ACK from the
    /// other's), and what differed.
    public struct Verdict: Sendable {
        public var expected: [Segment]
        public var expectedState: TCPState
        public var observed: [Segment]
        /// What the target sent again this step, as sent before (a retransmission): not judged, but a report
        /// shows it, so that a reply the stack gave by resending is never reported as "nothing".
        public var resent: [Segment] = []
        public var mismatches: [Mismatch]
        /// The segments differed only where the peer does not look (the ACK of a reset it receives synchronized):
        /// not a divergence, counted apart.
        public var equivalentDifference: Bool = false
        /// The octets (and FIN) of a transmission the target held back, as its congestion window may: not a
        /// divergence; the model sends them later (`TCPModel.Choice.heldBack`).
        public var heldBack: (octets: UInt32, fin: Bool)?
    }

    /// Judges a step: `transition` is what the model did with the input (nil for steps with no RFC event),
    /// `raw` what the target sent meanwhile (absolute numbers), `observedState` what it reports (nil: it cannot
    /// tell). `reportsWindowShrink`: whether a shrinking window counts (it is one finding per run).
    /// `peerSynchronized`: the tester's side of the connection was synchronized when the target replied (the target
    /// was in a synchronized state), so a reset's ACK is not read (`SegmentKey.differOnlyInResetAcks`).
    public mutating func judge(_ model: inout TCPModel, _ transition: Transition?, raw: [Segment], observedState: TCPState?,
                               reportsWindowShrink: Bool, peerSynchronized: Bool = false) -> Verdict {
        var observed: [Segment] = []
        // This step's new keys join `seen` once the expected side has been judged against the old ones.
        var seenNow = SentSegments()
        var resent: [Segment] = []
        // A zero-window probe sent between steps (its timer expired before a wait could time it) is what the
        // timer would send: a resend, as a retransmission there is (it changes nothing the model keeps).
        let probe: Segment? = heldProbe ?? (model.windowProbeDue && model.timers.isRunning(.retransmission)
            ? { var m = model; return m.apply(.timeout(Timeout(.retransmission))).outputs.first.map(\.segment).flatMap { $0.length == 0 ? $0 : nil } }()
            : nil)
        heldProbe = nil
        for var s in raw {
            if targetISN == nil, s.ctl.contains(.syn) { targetISN = s.seq }
            s.seq = s.seq &- (targetISN ?? 0)
            if let p = probe, TCPModel.retransmits(s, expected: p) {
                resent.append(s)
                continue
            }
            if seen.contains(s) || seenNow.contains(s) {
                resent.append(s)
                continue
            }
            seenNow.note(s)
            observed.append(s)
        }
        var mismatches = followWindow(observed, &model, reportsShrink: reportsWindowShrink)
        // A new incarnation on the connection (LISTEN again, then a SYN) has the target choose a new ISS: the
        // first SYN it sends binds it, and the model's outputs that depend on it move with it.
        var issShift: UInt32 = 0
        if !model.issBound, let syn = observed.first(where: { $0.ctl.contains(.syn) }) { issShift = model.adopt(.iss(syn.seq)) }
        // A rule's constant SEQ (the closed-state reset's 0) is absolute: number it as the target's side is.
        var expected: [Segment] = []
        for o in transition?.outputs ?? SmallList<Output>() {
            var s = o.followingISS(issShift).segment
            if o.seqConstant { s.seq &-= targetISN ?? 0 }
            // A rule that sends again what the target already sent (a request retransmitting its SYN,ACK) is
            // judged as the observed side is: a retransmission is not a new output.
            if seen.contains(s) { continue }
            expected.append(s)
        }
        // Sent again with the ACK of now, where no rule expects its like: a retransmission (the timer fired in the same
        // round as the input, whose answer moved RCV.NXT), not a new output.
        observed.removeAll { s in
            guard !expected.contains(where: { $0.seq == s.seq && $0.ctl == s.ctl && $0.dataLength == s.dataLength }),
                  seen.repeatsButForAck(s) else { return false }
            resent.append(s)
            return true
        }
        seen.formUnion(seenNow)
        model.listenAgain(listenerOpen: listenerOpen)
        let expectedState = model.spec.states[model.state].state
        // Acknowledgments are numbered from the tester's ISN, as case files do.
        expected = relative(expected)
        observed = relative(observed)
        let e = SegmentKey.normalize(expected), o = SegmentKey.normalize(observed)
        // In the order reports list them: window shrinks as seen, then the segments, then the state.
        var equivalent = false
        var held: (octets: UInt32, fin: Bool)?
        if e != o, SegmentKey.coalesced(e) != o {
            if peerSynchronized, SegmentKey.differOnlyInResetAcks(e, o) {
                equivalent = true
            } else if let h = SegmentKey.heldBack(expected: e, observed: o) ?? SegmentKey.heldBack(expected: SegmentKey.coalesced(e), observed: o) {
                model.adopt(.heldBack(h.octets, fin: h.fin))
                held = h
            } else {
                mismatches.append(.segments(expected: e, observed: o))
            }
        }
        if let os = observedState, os != expectedState { mismatches.append(.state(expected: expectedState, observed: os)) }
        return Verdict(expected: expected, expectedState: expectedState, observed: observed, resent: relative(resent), mismatches: mismatches,
                       equivalentDifference: equivalent, heldBack: held)
    }

    /// A zero-window probe (RFC 9293 §3.8.6.1's octet of new data, or Linux's ACK below SND.UNA) that the target sent before it took the step's
    /// input: its timer expired between steps (time passes while other lanes run). `model` is put back to
    /// `core`, takes that expiry, then `input` again; the probe is noted as sent, so `judge` counts it a resend.
    /// Returns the model's core after the expiry and the input's transition from there, or nil (and `model`
    /// untouched) when the first segment is not that probe.
    public mutating func probeBefore(_ model: inout TCPModel, core: TCPModel.Core, input: Input, raw: [Segment]) -> (core: TCPModel.Core, transition: Transition)? {
        guard let first = raw.first, let isn = targetISN else { return nil }
        var m = model
        m.core = core
        guard m.windowProbeDue, m.timers.isRunning(.retransmission) else { return nil }
        let expiry = m.apply(.timeout(Timeout(.retransmission)))
        var s = first
        s.seq &-= isn
        guard let p = expiry.outputs.first?.segment, TCPModel.retransmits(s, expected: p), p.dataLength == s.dataLength else { return nil }
        // Text is noted as sent; an empty probe (Linux's ACK below SND.UNA) has no key, so the next judgement is told.
        if s.dataLength > 0 { seen.note(s) } else { heldProbe = p }
        let probed = m.core
        let tr = m.apply(input)
        model = m
        return (probed, tr)
    }

    func relative(_ segs: [Segment]) -> [Segment] {
        segs.map { var s = $0; if s.ctl.contains(.ack) { s.ack &-= testerISN }; return s }
    }

    /// The target's receive window, as advertised, is what the model's acceptability test needs. Its right edge
    /// must not move left (RFC 9293 §3.8.6.2.2 SHLD-14); a stack that shrinks its advertisement still accepts up
    /// to the edge it offered, so the model keeps the furthest edge and the shrink is reported. Public for the
    /// segments taken out of a step's judgement (ACKs a stack held back, judged for their time): their window
    /// advertisements still move what the model knows of the target's window.
    public mutating func followWindow(_ observed: [Segment], _ model: inout TCPModel, reportsShrink: Bool) -> [Mismatch] {
        var out: [Mismatch] = []
        for s in observed where s.ctl.contains(.ack) && !s.ctl.contains(.rst) {
            // A SYN starts a connection (perhaps a new incarnation): its window is the first offer, and never
            // scaled (RFC 7323 §2.2).
            if s.ctl.contains(.syn) {
                rightEdge = nil
                inferredWindowShift = 0
            }
            let shift = inferredWindowShift
            var edge = s.ack &+ (s.window << shift)
            // The edge as advertised, before any inferred scale: what the report states.
            let advertisedEdge = edge
            if let k = agreedWindowShift, !s.ctl.contains(.syn) {
                // Agreed: the window is scaled already; a retraction of less than one unit is rounding.
                if let old = rightEdge, TCPModel.seqLess(edge, old) {
                    if old &- edge >= UInt32(1) << k, reportsShrink {
                        out.append(.windowShrink(by: old &- edge, window: s.window, ack: s.ack &- testerISN, inferredShift: nil))
                    }
                } else {
                    rightEdge = edge
                }
                continue
            }
            if let old = rightEdge, TCPModel.seqLess(edge, old) {
                // A stack that scales its advertisements without having agreed a window scale (Linux after a
                // simultaneous open, Corpus/linux/README.md) shows the edge it offered divided by 2^k: infer k,
                // so that the rest of the case is judged against the window the stack really uses.
                // Failing an exact match (the window also grew meanwhile), the scale the stack announced on its
                // SYN explains the shrink if, applied, it leaves the edge where it was or further right.
                var k = shift == 0 ? Self.impliedShift(offered: old &- s.ack, advertised: s.window) : nil
                if shift == 0, k == nil, let a = announcedWindowShift, a > 0, !TCPModel.seqLess(s.ack &+ (s.window << a), old) { k = a }
                if let k {
                    inferredWindowShift = k
                    edge = s.ack &+ (s.window << k)
                    if !TCPModel.seqLess(edge, old) { rightEdge = edge }
                }
                guard reportsShrink else { continue }
                out.append(.windowShrink(by: old &- advertisedEdge, window: s.window, ack: s.ack &- testerISN,
                                         inferredShift: inferredWindowShift != shift ? inferredWindowShift : nil))
            } else {
                rightEdge = edge
            }
        }
        adoptWindow(&model)
        return out
    }

    /// Gives `model` the target's receive window as far as its advertisements have shown it (the furthest right
    /// edge): also to a model rewound to where a step began, which must classify the step's input against it.
    public func adoptWindow(_ model: inout TCPModel) {
        guard let edge = rightEdge else { return }
        let wnd = edge &- model[.rcvNxt]
        if wnd <= 1 << 30 { model.adopt(.receiveWindow(wnd)) }
    }

    /// The k for which `advertised` is `offered` scaled down by 2^k (rounded either way), if any.
    public static func impliedShift(offered: UInt32, advertised: UInt32) -> Int? {
        guard advertised > 0, offered > advertised else { return nil }
        for k in 1...14 where advertised == offered >> k || advertised == (offered &+ (1 << k) &- 1) >> k { return k }
        return nil
    }
}
