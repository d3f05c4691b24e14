import Core
import Wire
import Model
import Spec

/// A segment the target sent, with the time it was captured (frame time, seconds).
public struct TimedSegment: Hashable, Sendable {
    public var time: Double
    public var segment: Segment
    /// Its options, as scanned once at capture (`OptionAgreement.observe` reads them).
    public var options: TCPOptionScan
    /// Captured whole as sent: its checksum is right (a TSO/GSO or GRO super-segment carries the pseudo-header's
    /// sum only), so its size can be held against the MSS.
    public var whole: Bool
    public init(time: Double, segment: Segment, options: TCPOptionScan = TCPOptionScan(), whole: Bool = false) {
        self.time = time
        self.segment = segment
        self.options = options
        self.whole = whole
    }
    public func hash(into h: inout Hasher) {
        h.combine(time)
        h.combine(segment)
    }
}

/// What a timing verdict is about: a timer of the model expiring, or an acknowledgment the stack held back
/// (RFC 9293 §3.8.6.3: a delayed ACK, timed from the segment it acknowledges).
public enum Timed: Hashable, Sendable {
    case timer(TimerName)
    case delayedAck

    public var spelling: String {
        switch self {
        case .timer(let t): t.spelling
        case .delayedAck: "delayed-ack"
        }
    }
}

/// A timer that expired outside the window the profile gives it, or not at all.
public struct TimerMismatch: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable {
        /// It expired before the window opened (minus the margin).
        case early
        /// It expired after the window closed (plus the margin).
        case late
        /// The window and its margin passed within the step and it did not expire.
        case missing
    }

    public var kind: Kind
    public var timed: Timed
    /// The timer, nil for a delayed acknowledgment.
    public var timer: TimerName? { if case .timer(let t) = timed { t } else { nil } }
    /// The window, seconds after the timer's (re)start, and the timings that set it.
    public var window: ExpiryWindow
    /// Seconds after the (re)start it was seen to expire; for `missing`, how long was waited.
    public var after: Double
    /// The margin allowed on the side judged (seconds), and where it comes from.
    public var margin: Double
    public var marginSource: String
    /// What the expiry shows as: the retransmitted segment, or the state left.
    public var what: String

    public init(kind: Kind, timer: TimerName, window: ExpiryWindow, after: Double, margin: Double, marginSource: String, what: String) {
        self.init(kind: kind, timed: .timer(timer), window: window, after: after, margin: margin, marginSource: marginSource, what: what)
    }

    public init(kind: Kind, timed: Timed, window: ExpiryWindow, after: Double, margin: Double, marginSource: String, what: String) {
        self.kind = kind
        self.timed = timed
        self.window = window
        self.after = after
        self.margin = margin
        self.marginSource = marginSource
        self.what = what
    }

    static func seconds(_ v: Double) -> String {
        v < 10 ? String(format: "%.3f s", v) : String(format: "%.1f s", v)
    }

    public var description: String {
        let w = "window \(window.text) (\(window.timings.map(\.rawValue).joined(separator: ", "))) ± \(TimerMismatch.seconds(margin)) (\(marginSource))"
        guard let timer else {
            // A delayed acknowledgment: timed from the segment whose text or FIN it acknowledges.
            switch kind {
            case .late: return "delayed-ack: the ACK up to \(what) came \(TimerMismatch.seconds(after)) after the segment it acknowledges; \(w)"
            default: return "delayed-ack: no ACK up to \(what) within \(TimerMismatch.seconds(after)) of the segment it acknowledges; \(w)"
            }
        }
        switch kind {
        case .early: return "timer: \(timer.spelling) expired early, \(what) \(TimerMismatch.seconds(after)) after its start; \(w)"
        case .late: return "timer: \(timer.spelling) expired late, \(what) \(TimerMismatch.seconds(after)) after its start; \(w)"
        case .missing: return "timer: \(timer.spelling) did not expire: no \(what) within \(TimerMismatch.seconds(after)) of its start; \(w)"
        }
    }
}

/// A timer's expiry that was judged within its window: what reports show beside the segments.
public struct TimedExpiry: Hashable, Sendable {
    public var timed: Timed
    /// The timer, nil for a delayed acknowledgment.
    public var timer: TimerName? { if case .timer(let t) = timed { t } else { nil } }
    public var window: ExpiryWindow
    /// Seconds after the timer's (re)start; nil when the expiry was inferred (a state left) without a time.
    public var after: Double?
    public var margin: Double

    public init(timer: TimerName, window: ExpiryWindow, after: Double?, margin: Double) {
        self.init(timed: .timer(timer), window: window, after: after, margin: margin)
    }

    public init(timed: Timed, window: ExpiryWindow, after: Double?, margin: Double) {
        self.timed = timed
        self.window = window
        self.after = after
        self.margin = margin
    }

    public var description: String {
        "\(timed.spelling) after \(after.map(TimerMismatch.seconds) ?? "?") (window \(window.text) ± \(TimerMismatch.seconds(margin)))"
    }
}

extension StepOracle {
    /// What a wait did: the timers that expired and how.
    public struct WaitVerdict: Sendable {
        public var verdict: Verdict
        /// The timeout transitions the model took, in order (the first is the step's event for coverage).
        public var transitions: [Transition]
        public var expiries: [TimedExpiry]
        /// The timers' (re)start times after the wait.
        public var starts: [TimerName: Double]
        /// The model's timers no longer know the stack's (see `judgeWait`).
        public var timersUnknown = false
    }

    /// What the target sent while its timers were not known (`WaitVerdict.timersUnknown`): the segments a
    /// retransmission timer's expiry would send (a retransmission, a zero-window probe) are taken as expiries
    /// whenever they came (the model follows them), not judged in time; the rest is returned, for judging as any
    /// step's output.
    /// Whether the target's segment `s` (absolute) is what an expiry sends, `e` (target-relative).
    func isExpiry(_ s: Segment, of e: Segment) -> Bool {
        var r = s
        r.seq &-= targetISN ?? 0
        return TCPModel.retransmits(r, expected: e)
    }

    public mutating func untimedExpiries(_ model: inout TCPModel, raw: [Segment]) -> [Segment] {
        var pending = raw
        let isn = targetISN ?? 0
        // The timers whose expiry sends: the retransmission timer's segment, a keep-alive probe.
        expiry: for _ in 0..<16 {
            for t in [TimerName.retransmission, .keepalive] where model.timers.isRunning(t) {
                var next = model
                let tr = next.apply(.timeout(Timeout(t)))
                guard let e = tr.outputs.map(\.segment).first(where: { $0.length > 0 }) ?? tr.outputs.first?.segment,
                      let k = pending.firstIndex(where: { isExpiry($0, of: e) }) else { continue }
                var r = pending.remove(at: k)
                r.seq &-= isn
                seen.note(r)  // sent again later, it is a resend
                model = next
                continue expiry
            }
            break
        }
        return pending
    }

    /// Judges a wait from `start` to `end` (frame time): the timers running on the model expire in order, each
    /// inside its window [earliest, latest] after its (re)start (`starts`, frame time), widened by `margin`.
    /// A retransmission is looked for among `raw`; a timer that sends nothing (TIME-WAIT) shows in the state the
    /// target reports. Early, late and missing expiries are `Mismatch.timer`; what no timer explains is judged as
    /// any step's output. A wait that ends inside a window decides nothing about that timer: a retransmission
    /// seen there is taken, silence is not judged, and the state may be either.
    ///
    /// `lastInput`: when the tester last sent the target a segment (frame time). A retransmission before its window
    /// that follows such a segment may be the stack's answer to it (Linux resends a SYN 2 jiffies after an
    /// unacceptable ACK in SYN-SENT; a fast retransmit): not a timer verdict when it came after the timer's start, and the timers are unjudged after it
    /// (`WaitVerdict.timersUnknown`). `retransmissionLimit`: expiries after which the stack may give the
    /// connection up (an orphan's retries): past it nothing more is judged, the state included.
    public mutating func judgeWait(_ model: inout TCPModel, from start: Double, to end: Double, starts: [TimerName: Double], raw: [TimedSegment],
                                   observedState: TCPState?, margin: TimerMargin, reportsWindowShrink: Bool, lastInput: Double? = nil,
                                   retransmissionLimit: Int? = nil) -> WaitVerdict {
        var starts = starts
        var timersUnknown = false
        var pending = raw.sorted { $0.time < $1.time }
        var transitions: [Transition] = []
        var expiries: [TimedExpiry] = []
        var timerMismatches: [Mismatch] = []
        var expectedOut: [Segment] = [], observedOut: [Segment] = []
        var stateOpen = false  // the wait ended inside a window of a timer that sends nothing
        let isn = targetISN ?? 0
        loop: for _ in 0..<64 {
            guard let (t, w) = model.nextExpiry(since: { starts[$0] ?? start }) else { break }
            if t == .retransmission, let lim = retransmissionLimit, Int(model.timers.backoffs) >= lim {
                // The stack may give up from here, or retransmit on (Linux measures its orphan retries in time
                // from a 200 ms base, so a 200 ms RTO runs one expiry past the count): what the timer would
                // send is taken whenever it came, the state not judged.
                stateOpen = true
                timersUnknown = true
                let rest = untimedExpiries(&model, raw: pending.map(\.segment))
                pending = pending.filter { p in rest.contains(p.segment) }
                break
            }
            let s0 = starts[t] ?? start
            let lo = s0 + (w.lower ?? 0) - margin.early
            let hi = w.upper.map { s0 + $0 + margin.late(after: $0) }
            var next = model
            let tr = next.apply(.timeout(Timeout(t)))
            let outs = tr.outputs.map(\.segment)
            let lateMargin = w.upper.map { margin.late(after: $0) } ?? margin.late
            if let e = outs.first(where: { $0.length > 0 }) ?? outs.first {
                // A retransmission (or a zero-window probe): the first copy of the front of the queue the target sent.
                if let k = pending.firstIndex(where: { isExpiry($0.segment, of: e) }) {
                    let got = pending.remove(at: k)
                    var r = got.segment
                    r.seq &-= isn
                    r = relative([r])[0]
                    let after = got.time - s0
                    if got.time < lo, let li = lastInput, li > s0 {
                        // Early, but after a segment of the tester's: perhaps its answer, not the timer.
                        pending.insert(got, at: k)
                        timersUnknown = true
                        break
                    } else if got.time < lo {
                        timerMismatches.append(.timer(TimerMismatch(kind: .early, timer: t, window: w, after: after, margin: margin.early, marginSource: margin.source,
                                                                    what: "sent \(SegmentKey(r))")))
                    } else if let hi, got.time > hi {
                        timerMismatches.append(.timer(TimerMismatch(kind: .late, timer: t, window: w, after: after, margin: lateMargin, marginSource: margin.source,
                                                                    what: "sent \(SegmentKey(r))")))
                    } else {
                        expiries.append(TimedExpiry(timer: t, window: w, after: after, margin: lateMargin))
                    }
                    model = next
                    _ = judge(&model, nil, raw: [got.segment], observedState: nil, reportsWindowShrink: reportsWindowShrink)
                    transitions.append(tr)
                    // What the model expects by the end of the wait (an early expiry in a wait that ends before the
                    // window: nothing), which is what a case file replays.
                    if end >= lo { expectedOut.append(contentsOf: relative([e])) }
                    observedOut.append(r)
                    for u in TimerName.allCases where tr.timersStarted & (1 << u.rawValue) != 0 { starts[u] = got.time }
                    if !timerMismatches.isEmpty { break loop }
                    continue
                }
                // Not sent, and the connection is gone the way R2's expiry leaves it, inside R2's window: the stack
                // closed at this expiry instead of sending (R2 is reached at a retransmission timeout; Linux's
                // probe timer checks TCP_USER_TIMEOUT there, its RTO is clamped to it).
                if t == .retransmission, let uw = model.expiry(.user), let os = observedState {
                    let ulo = (starts[.user] ?? start) + (uw.lower ?? 0) - margin.early
                    var closed = model
                    let utr = closed.apply(.timeout(Timeout(.user)))
                    // What R2's expiry sends (a reset, under choice r2-reset) must have come: each found once.
                    var taken: [Int] = []
                    for e in utr.outputs.map(\.segment) {
                        guard let k = pending.indices.first(where: { !taken.contains($0) && isExpiry(pending[$0].segment, of: e) }) else { taken = []; break }
                        taken.append(k)
                    }
                    let sent = taken.count == utr.outputs.count
                    let gone = sent && os == closed.spec.states[closed.state].state && os != model.spec.states[model.state].state
                    if gone, end >= ulo, ulo <= (hi ?? .infinity) {
                        for k in taken.sorted(by: >) {
                            var r = pending.remove(at: k).segment
                            r.seq &-= isn
                            observedOut.append(relative([r])[0])
                        }
                        expectedOut.append(contentsOf: relative(utr.outputs.map(\.segment)))
                        model = closed
                        transitions.append(utr)
                        expiries.append(TimedExpiry(timer: .user, window: uw, after: nil, margin: uw.upper.map { margin.late(after: $0) } ?? margin.late))
                        break
                    }
                    if gone, end < ulo {
                        // Given up before R2 allows: R2 too short, not a retransmission missing.
                        let su = starts[.user] ?? start
                        let stay = model.spec.states[model.state].state
                        timerMismatches.append(.timer(TimerMismatch(kind: .early, timer: .user, window: uw, after: end - su, margin: margin.early,
                                                                    marginSource: margin.source, what: "\(stay) left for \(os) by")))
                        transitions.append(utr)
                        break
                    }
                }
                if let hi, end > hi {
                    timerMismatches.append(.timer(TimerMismatch(kind: .missing, timer: t, window: w, after: end - s0, margin: lateMargin, marginSource: margin.source,
                                                                what: t == .retransmission ? "retransmission of \(SegmentKey(relative([e])[0]))" : "\(SegmentKey(relative([e])[0]))")))
                    expectedOut.append(contentsOf: relative([e]))
                    transitions.append(tr)
                }
                break
            }
            // A timer that sends nothing: it has surely expired once its window and margin passed; inside the
            // window the state the target reports decides, before it nothing happened.
            let expiredState = next.spec.states[next.state].state
            if let hi, end > hi {
                model = next
                transitions.append(tr)
                expiries.append(TimedExpiry(timer: t, window: w, after: nil, margin: lateMargin))
                for u in TimerName.allCases where tr.timersStarted & (1 << u.rawValue) != 0 { starts[u] = hi }
                continue
            }
            let stayState = model.spec.states[model.state].state
            if end >= lo {
                if let os = observedState, os == expiredState, os != stayState {
                    model = next
                    transitions.append(tr)
                    expiries.append(TimedExpiry(timer: t, window: w, after: nil, margin: lateMargin))
                } else if observedState == nil {
                    stateOpen = true
                }
            } else if let os = observedState, os == expiredState, os != stayState {
                // Gone before its window opened.
                // The model stays where it was: the case file says the state was due to hold.
                timerMismatches.append(.timer(TimerMismatch(kind: .early, timer: t, window: w, after: end - s0, margin: margin.early, marginSource: margin.source,
                                                            what: "\(stayState) left for \(os) by")))
                transitions.append(tr)
            }
            break
        }
        // Still in the state a timer's expiry should have left: late (the mismatch replaces the state's).
        var v = judge(&model, nil, raw: pending.map(\.segment), observedState: stateOpen ? nil : observedState, reportsWindowShrink: reportsWindowShrink)
        if let last = transitions.last, last.outputs.isEmpty, let os = observedState, os != v.expectedState,
           let t = TimerName(expiring: last.event), timerMismatches.isEmpty {
            let w = expiries.last?.window ?? ExpiryWindow(lower: nil, upper: nil, timings: [])
            let s0 = starts[t] ?? start
            v.mismatches.removeAll { if case .state = $0 { true } else { false } }
            expiries.removeLast()
            v.mismatches.append(.timer(TimerMismatch(kind: .missing, timer: t, window: w, after: end - s0, margin: w.upper.map { margin.late(after: $0) } ?? margin.late,
                                                     marginSource: margin.source, what: "move from \(os) to \(v.expectedState)")))
        }
        // A state left early is that timer mismatch, not a second finding.
        if !timerMismatches.isEmpty { v.mismatches.removeAll { if case .state = $0 { true } else { false } } }
        v.expected = expectedOut + v.expected
        v.observed = observedOut + v.observed
        v.mismatches = timerMismatches + v.mismatches
        return WaitVerdict(verdict: v, transitions: transitions, expiries: expiries, starts: starts, timersUnknown: timersUnknown)
    }
}
