import Core
import Spec

/// A connection's timers (RFC 9293 §3.10.8): which run, and the retransmission timer's history, which decides
/// how long it runs (RFC 6298). When each was started is the driver's to keep (the model has no clock):
/// `Transition.timersStarted` says which an input (re)started, `timersStopped` which it stopped.
public struct Timers: Hashable, Sendable {
    /// Bit per `TimerName.rawValue`.
    public var running: UInt8 = 0
    /// Expiries of the retransmission timer since new data was last acknowledged without having been sent again:
    /// each multiplies the RTO by the backoff factor (RFC 6298 §5.5).
    public var backoffs: UInt8 = 0
    /// Whether a round-trip sample can have been taken: something sent only once was acknowledged (Karn's rule,
    /// MUST-18). Until then the RTO is the initial one (RFC 6298 §2.1).
    public var sampled = false
    /// The retransmission timer expired while the connection was opening (a SYN or SYN,ACK sent again): when
    /// data transmission begins without a sample, RFC 6298 §5.7 re-initializes the RTO (to 3 s).
    public var synTimedOut = false
    /// The handshake ended without a round-trip sample while the retransmission timer ran on (Linux's simultaneous
    /// open established by an ACK of SND.UNA): the RTO that timer's next start takes is RFC 6298 §5.7's, as
    /// `synTimedOut` (Linux's tcp_init_metrics sets the fallback whenever srtt is 0; the armed timer keeps its
    /// length).
    public var fallbackAtRestart = false
    /// SND.NXT when the retransmission timer last expired: an acknowledgment below it covers text sent again.
    public var retransmittedTo: UInt32 = 0
    /// The loss window of the last expiry no longer holds what waits (`option loss-window-one-syn`: the handshake
    /// ended after a single retransmission of the SYN or SYN,ACK). The next expiry sets it again.
    public var lossLifted = false
    /// How long before the user timer's start the segment it times may first have gone (the RTO that expired,
    /// at its latest): R2 is timed from the first retransmission, and a stack that counts from the first
    /// transmission closes up to that much sooner (RFC 9293 §3.8.3 allows either: "time units or a count").
    public var r2Lead: Double = 0
    /// Keep-alive probes sent since the peer was last heard from (Linux's icsk_probes_out): the keep-alive timer
    /// runs the idle time before the first, the interval after each.
    public var keepaliveProbes: UInt8 = 0
    /// A segment came that a stack may or may not count as the peer being heard from (RFC 9293 §3.8.4 says "data
    /// or acknowledgment packets", not which): the keep-alive timer's start is no longer known.
    public var keepaliveUnsure = false

    public init() {}

    public func isRunning(_ t: TimerName) -> Bool { running & (1 << t.rawValue) != 0 }
}

/// How long after its (re)start a timer expires, as the profile bounds it, with the clause that sets it.
public struct ExpiryWindow: Hashable, Sendable {
    public var lower: Double?
    public var upper: Double?
    /// The `timing` lines that set it (their clauses and requirement IDs name what an early or late expiry
    /// breaks).
    public var timings: [TimingName]

    public init(lower: Double?, upper: Double?, timings: [TimingName]) {
        self.lower = lower
        self.upper = upper
        self.timings = timings
    }

    public var text: String { Timing(lower: lower, upper: upper, citation: "").text }
}

extension TCPModel {
    /// What `applyTimers` compares with: the TCB and timers before the input.
    typealias Before = (una: UInt32, iss: UInt32, timers: Timers, synchronized: Bool, probing: Bool, nxt: UInt32, rcvNxt: UInt32)

    /// Keep-alive (RFC 9293 §3.8.4), once the application turned it on: the timer runs while the connection is
    /// idle — in a state whose KEEPALIVE-TIMEOUT rules probe, with nothing sent outstanding and nothing waiting to
    /// be sent (MUST-26) — from the last segment that shows the peer alive: one whose acknowledgment is acceptable
    /// (SND.UNA =< SEG.ACK =< SND.NXT, past the sequence check) or whose text or FIN is taken (Linux's rcv_tstamp
    /// and lrcvtime, which keepalive_time_elapsed reads). Each probe (the rule restarts the timer) counts; a sign of
    /// life resets the count. Any other segment may or may not count ("no data or acknowledgment packets have been
    /// received", MUST-26, does not say): `keepaliveUnsure`.
    mutating func applyKeepalive(_ tr: inout Transition, seg: Segment, before: Before) {
        let bit = UInt8(1) << TimerName.keepalive.rawValue
        let idle = keepaliveStates & (1 << UInt64(state)) != 0 && tcb[.sndUna] == tcb[.sndNxt] && tcb[.sndQueue] == 0
            && !(tcb[.finPending] == 1 && tcb[.finSent] == 0)
        guard idle else {
            if timers.running & bit != 0 { tr.timersStopped |= bit }
            timers.running &= ~bit
            tr.timersStarted &= ~bit
            timers.keepaliveProbes = 0
            return
        }
        if tr.event == .keepaliveTimeout {
            if tr.timersStarted & bit != 0 {
                timers.keepaliveProbes &+= 1
            } else {
                // Its rule restarts nothing (linux's orphaned FIN-WAIT-2, a simultaneous open's unarmed timer):
                // it has expired and runs no more until a sign of life starts it again.
                timers.running &= ~bit
            }
        } else if tr.event == .segment {
            let steps = tr.chain >= 0 ? spec.chains[tr.chain].steps : []
            let acked = seg.ctl.contains(.ack) && !seg.ctl.contains(.rst) && steps.contains { $0 == "ack" }
                && !TCPModel.seqLess(seg.ack, before.una) && !TCPModel.seqLess(before.nxt, seg.ack)
            if acked || tcb[.rcvNxt] != before.rcvNxt || before.timers.running & bit == 0 {
                tr.timersStarted |= bit
                timers.running |= bit
                timers.keepaliveProbes = 0
                timers.keepaliveUnsure = false
            } else {
                timers.keepaliveUnsure = true
            }
        }
        // A call starts nothing (a stack times idleness from what it received).
    }

    /// Keep-alives are on in this state, nothing sent is outstanding, but text waits to be sent (behind a closed
    /// window): RFC 9293 §3.8.4 MUST-26 does not forbid a probe here, though the model's timer does not run.
    public var keepaliveWhileQueued: Bool {
        keepaliveStates & (1 << UInt64(state)) != 0 && tcb[.sndUna] == tcb[.sndNxt] && tcb[.sndQueue] > 0
    }

    /// `KEEPALIVE.LEFT`: probes the application allows before giving the connection up, less those sent.
    public var keepaliveLeft: UInt32 {
        guard let n = spec.timings[.keepaliveProbes]?.lower else { return .max }
        return UInt32(max(0, Int(n) - Int(timers.keepaliveProbes)))
    }

    /// Applies an input's timer actions. The retransmission timer follows RFC 6298 §5: sending data while it runs
    /// does not restart it (§5.1), an acknowledgment of new data does (§5.3) and resets the backoff, and when
    /// nothing is outstanding it stops (§5.2). `tr.timersStarted` is left saying only the timers that now run from
    /// this input.
    mutating func applyTimers(_ tr: inout Transition, event: EventKind, before: Before) {
        if img.clears[state] {
            // No TCB, no timers (RFC 9293 §3.10.8 "If the state is CLOSED ... there is no TCB and no timer").
            tr.timersStopped = before.timers.running
            tr.timersStarted = 0
            timers = Timers()
            return
        }
        let rto = UInt8(1) << TimerName.retransmission.rawValue
        let user = UInt8(1) << TimerName.user.rawValue
        // (Read before the expiry backs the timer off.)
        let lead = event == .retransmissionTimeout && !timers.isRunning(.user) ? expiry(.retransmission)?.upper : nil
        // An acknowledgment of something new (not the SND.UNA an ISS selection set).
        let acked = event == .segment && tcb[.iss] == before.iss && tcb[.sndUna] != before.una
        if acked {
            // Karn's rule (RFC 6298 §3, §5; RFC 9293 §3.8.2 "keeping the backed-off value until a subsequent
            // segment with new data has been sent and acknowledged without retransmission"): an acknowledgment
            // that covers text sent again gives no sample, and the backed-off RTO stays. The handshake's is
            // RFC 6298 §5.7's (`synTimedOut`).
            let karn = timers.backoffs > 0 && TCPModel.seqLess(before.una, timers.retransmittedTo)
            let handshake = !before.synchronized || before.una == before.iss  // this acknowledges our SYN
            if handshake || !karn {
                if timers.backoffs == 0 || !handshake { timers.sampled = true }
                timers.backoffs = 0
            }
            // R2 counts the retransmissions of one segment (RFC 9293 §3.8.3): the front of the queue has moved,
            // so it ends (Linux's tcp_ack sets icsk_retransmits to 0, and retransmits_timed_out needs one).
            if timers.running & user != 0 { tr.timersStopped |= user }
        }
        // The user timer runs from the first retransmission of the segment; a later expiry does not restart it.
        if tr.timersStarted & user != 0, timers.running & user != 0, tr.timersStopped & user == 0 {
            tr.timersStarted &= ~user
        } else if tr.timersStarted & user != 0 {
            timers.r2Lead = lead ?? 0
        }
        // A probe timer becomes a retransmission timer when the window opens and text goes (Linux's
        // tcp_ack_probe clears the probe timer and its backoff; the first transmission arms the RTO afresh).
        if before.probing, !windowProbeDue, tr.timersStarted & rto != 0, event != .retransmissionTimeout {
            timers.backoffs = 0
            timers.running &= ~rto
            // The probes' R2 ends with them (Linux's tcp_ack_probe clears icsk_probes_tstamp).
            if timers.running & user != 0 { tr.timersStopped |= user }
        }
        if event == .retransmissionTimeout, tr.timersStarted & rto != 0 {
            timers.backoffs &+= 1
            timers.retransmittedTo = tcb[.sndNxt]
            timers.lossLifted = false
            if !before.synchronized { timers.synTimedOut = true }
        } else if tr.timersStarted & rto != 0, timers.running & rto != 0, !acked,
                  !(before.probing && windowProbeDue && event == .segment) {
            tr.timersStarted &= ~rto  // §5.1: it already runs for the earlier data
        }
        // A handshake ended with no sample and the timer still armed: its length stays, its next start falls back.
        if event == .segment, !before.synchronized, spec.states[state].synchronized, !timers.sampled, timers.running & rto != 0,
           tr.timersStarted & rto == 0 {
            timers.fallbackAtRestart = true
        } else if timers.fallbackAtRestart, tr.timersStarted & rto != 0 {
            timers.synTimedOut = true
            timers.fallbackAtRestart = false
        }
        // (A segment while the window stays closed restarts the probe timer, as Linux's tcp_ack_probe does when
        // its slow path runs tcp_ack; whether it did is not known, so the driver judges no timer after it.)
        timers.running &= ~tr.timersStopped
        timers.running |= tr.timersStarted
        if timers.running & rto != 0, tcb[.sndUna] == tcb[.sndNxt], !windowProbeDue {
            timers.running &= ~rto
            tr.timersStarted &= ~rto
            tr.timersStopped |= rto
        }
        // Nothing retransmitted waits: R2 has nothing to count.
        if timers.running & rto == 0, timers.running & user != 0 {
            timers.running &= ~user
            tr.timersStarted &= ~user
            tr.timersStopped |= user
        }
    }

    /// When the running timer `t` expires, counted from its latest (re)start: nil when it does not run or the
    /// profile sets no bound for it.
    public func expiry(_ t: TimerName) -> ExpiryWindow? {
        guard timers.isRunning(t) else { return nil }
        switch t {
        case .retransmission:
            return rtoWindow()
        case .timeWait:
            // An orphaned FIN-WAIT-2 (the profile's fin-timeout) lasts at least 3.5 RTO (Linux's tcp_fin_time:
            // "(rto << 2) - (rto >> 1)"), the RTO as backed off and not yet sampled again.
            if spec.states[state].state == .finWait2, let f = spec.timings[.finTimeout] {
                guard let r = rtoWindow() else { return ExpiryWindow(lower: f.lower, upper: f.upper, timings: [.finTimeout]) }
                let floorLower = r.lower.map { $0 * 3.5 }, floorUpper = r.upper.map { $0 * 3.5 }
                let lower = [f.lower, floorLower].compactMap { $0 }.max()
                let upper: Double? = f.upper.flatMap { u in floorUpper.map { max(u, $0) } }
                let floored = (floorUpper ?? .infinity) > (f.lower ?? 0)
                return ExpiryWindow(lower: lower, upper: upper, timings: [.finTimeout] + (floored ? r.timings : []))
            }
            guard let w = spec.timings[.timeWait] else { return nil }
            return ExpiryWindow(lower: w.lower, upper: w.upper, timings: [.timeWait])
        case .user:
            // R2 for a SYN while the segment retransmitted is one (SND.UNA = ISS: the SYN is unacknowledged,
            // whatever the state says), R2 for data otherwise (RFC 9293 §3.8.3 MUST-23, SHLD-11).
            let name: TimingName = tcb[.sndUna] == tcb[.iss] ? .r2Syn : .r2
            guard let w = spec.timings[name] else { return nil }
            // Probing a closed window, a stack may check R2 only when the probe timer expires (R2 may be "a count
            // of retransmissions", §3.8.3): the close may come up to one probe interval late. (Linux clamps both
            // its RTO and its probe timer to TCP_USER_TIMEOUT and closes on time.)
            let probeLate = windowProbeDue ? expiry(.retransmission)?.upper ?? 0 : 0
            return ExpiryWindow(lower: w.lower.map { max(0, $0 - timers.r2Lead) }, upper: w.upper.map { $0 + probeLate }, timings: [name])
        case .keepalive:
            // The idle time before the first probe, the interval after each (MUST-26, MUST-27).
            let name: TimingName = timers.keepaliveProbes == 0 ? .keepaliveIdle : .keepaliveInterval
            guard let w = spec.timings[name] else { return nil }
            return ExpiryWindow(lower: w.lower, upper: w.upper, timings: [name])
        }
    }

    /// The retransmission timer's length as it would run now (RFC 6298: initial, sampled or §5.7's fallback,
    /// backed off, capped), whether or not it runs.
    func rtoWindow() -> ExpiryWindow? {
        // RFC 6298 §5.7: after a handshake timeout and no sample, data transmission starts from 3 s (where
        // the profile says so), its backoff counted afresh from there.
        let fallback = !timers.sampled && timers.synTimedOut && spec.states[state].synchronized && spec.timings[.rtoAfterSynTimeout] != nil
        let base: TimingName = timers.sampled ? .rtoMin : fallback ? .rtoAfterSynTimeout : .rtoInitial
        guard let b = spec.timings[base] else { return nil }
        var lower = b.lower, upper = b.upper
        var used = [base]
        // SYN retransmissions the profile keeps linear do not count towards the backoff.
        var k = Int(timers.backoffs)
        if spec.states[state].state == .synSent, let n = spec.timings[.rtoSynLinear]?.lower, k > 0 {
            k = max(0, k - Int(n))
            used.append(.rtoSynLinear)
        }
        if k > 0, let f = spec.timings[.rtoBackoff] {
            used.append(.rtoBackoff)
            func power(_ x: Double) -> Double { (0..<k).reduce(1) { p, _ in p * x } }
            lower = lower.map { v in f.lower.map { v * power($0) } ?? v }
            upper = upper.flatMap { v in f.upper.map { v * power($0) } }
        }
        if let m = spec.timings[.rtoMax] {
            // The ceiling: an RTO backed off past it is held there (RFC 6298 §2.5, §5.5).
            if let cap = m.upper, (upper ?? .infinity) > cap || (lower ?? 0) > cap {
                lower = lower.map { min($0, cap) }
                upper = min(upper ?? cap, cap)
                used.append(.rtoMax)
            } else if let floor = m.lower, let l = lower, l > floor {
                // Only "at least" is known of the ceiling: past it, the stack may hold the RTO anywhere above.
                lower = floor
                used.append(.rtoMax)
            }
        }
        return ExpiryWindow(lower: lower, upper: upper, timings: used)
    }
}

extension TCPModel {
    /// The running timers whose expiry the profile bounds, the one due first (by its latest expiry, then its
    /// earliest) first.
    public func pendingExpiries() -> [(timer: TimerName, window: ExpiryWindow)] {
        TimerName.allCases.compactMap { t in expiry(t).map { (t, $0) } }
            .sorted { ($0.window.upper ?? $0.window.lower ?? .infinity, $0.window.lower ?? 0) < ($1.window.upper ?? $1.window.lower ?? .infinity, $1.window.lower ?? 0) }
    }

    /// The running timer due first, given when each (re)started (`since`, any clock): by its latest expiry (its
    /// earliest when only that is bounded). On a tie the user timer goes first: a stack clamps its retransmission
    /// timer to R2 and closes at that expiry without sending (Linux's tcp_clamp_rto_to_user_timeout).
    public func nextExpiry(since: (TimerName) -> Double) -> (timer: TimerName, window: ExpiryWindow)? {
        func due(_ x: (timer: TimerName, window: ExpiryWindow)) -> Double { since(x.timer) + (x.window.upper ?? x.window.lower ?? .infinity) }
        return pendingExpiries().min { a, b in
            let (da, db) = (due(a), due(b))
            return da < db || (da == db && a.timer == .user && b.timer != .user)
        }
    }

    /// Whether a timeout's transition sends the segment `s` (target-relative) again: a retransmission is the
    /// front of the queue again (RFC 9293 §3.10.8), cut as the stack likes, so it is told by where it starts and
    /// whether it is a SYN, not by its length; a zero-window probe is the same.
    public static func retransmits(_ s: Segment, expected e: Segment) -> Bool {
        guard s.seq == e.seq, s.ctl.contains(.syn) == e.ctl.contains(.syn) else { return false }
        // A zero-window probe that carries nothing (an ACK below SND.UNA) is told by its flags.
        return s.length > 0 || (e.length == 0 && s.ctl == e.ctl)
    }
}
