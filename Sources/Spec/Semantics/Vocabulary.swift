import Core
/// The fixed vocabulary of the spec language: the RFC's variables, segment fields, control bits, events and the
/// few builtin actions whose semantics are too procedural to write as assignments.

/// TCB variables (RFC 9293 §3.3.1) plus the bookkeeping an executable model needs. All are 32-bit; sequence
/// arithmetic on them is modulo 2^32.
public enum Register: UInt8, CaseIterable, Sendable {
    case sndUna, sndNxt, sndWnd, sndUp, sndWl1, sndWl2, iss
    case rcvNxt, rcvWnd, rcvUp, irs
    case maxSndWnd
    /// Octets the user has SENT that are not yet segmentized.
    case sndQueue
    /// Octets accepted from the network and not yet RECEIVEd by the user.
    case rcvQueue
    /// 1 once the user has called CLOSE and the FIN is waiting for queued data.
    case finPending
    /// 1 once our FIN occupies SND.NXT-1.
    case finSent
    /// 1 when the connection came from a passive OPEN (LISTEN), for SYN-RECEIVED's RST and SYN rules.
    case passive
    /// Text held for later processing (RFC 9293 §3.10.7.4, SHLD-31; text queued with a SYN, §3.10.7.2/3): up to
    /// `TCB.heldRanges` disjoint ranges beyond RCV.NXT, start and length each, nearest first (a length of 0 ends
    /// the list).
    case holdSeq1, holdLen1, holdSeq2, holdLen2, holdSeq3, holdLen3, holdSeq4, holdLen4, holdSeq5, holdLen5
    /// 1 while a FIN is held (it came beyond RCV.NXT, or with a SYN), at sequence number RCV.HOLD.FINSEQ.
    case holdFin, holdFinSeq
    /// 1 once text had to be forgotten because more separate ranges arrived than the model holds.
    case holdLost
    /// 1 once the peer's FIN has been received, while the user has not read the end of the stream; 2 once read.
    case rcvFin
    /// A profile's own refinement of the state (linux: 1 while FIN-WAIT-2 is held by a timewait minisocket).
    case substate
    /// RFC 7323 §2.2's Snd.Wind.Shift and Rcv.Wind.Shift: the shifts the peer's windows and the endpoint's own carry
    /// once both SYNs agreed a Window Scale (each at most 14), 0 otherwise. The driver sets them from the SYNs' options
    /// (`TCPModel.Choice.windowShifts`); windows in SEG.WND, SND.WND and RCV.WND are already scaled values.
    case sndWindShift, rcvWindShift
    /// 1 once both SYNs carried SACK-Permitted (RFC 2018 §2): the endpoint reports the text it holds beyond RCV.NXT
    /// in SACK blocks (`TCPModel.Choice.sackPermitted`; the highest block's end is HELD.END).
    case sackOK
    /// 1 once both SYNs carried Timestamps (RFC 7323 §3.2): TS.Recent is valid and PAWS applies (§5.3;
    /// `TCPModel.Choice.timestampsAgreed`). TS.Recent itself is not a register: the tester's TSvals only grow, so an
    /// input is old exactly when it says so (SEG.TSOLD).
    case tsOK
    /// While a FIN is held: just past the farthest FIN held since (a later FIN at another sequence number replaces
    /// RCV.HOLD.FINSEQ, but a stack that queues segments keeps both: Linux's highest SACK block ends past the farther).
    case holdFinEnd

    public var spelling: String {
        switch self {
        case .sndUna: "SND.UNA"
        case .sndNxt: "SND.NXT"
        case .sndWnd: "SND.WND"
        case .sndUp: "SND.UP"
        case .sndWl1: "SND.WL1"
        case .sndWl2: "SND.WL2"
        case .iss: "ISS"
        case .rcvNxt: "RCV.NXT"
        case .rcvWnd: "RCV.WND"
        case .rcvUp: "RCV.UP"
        case .irs: "IRS"
        case .maxSndWnd: "MAX.SND.WND"
        case .sndQueue: "SND.QUEUE"
        case .rcvQueue: "RCV.QUEUE"
        case .finPending: "FIN.PENDING"
        case .finSent: "FIN.SENT"
        case .passive: "PASSIVE"
        case .holdSeq1: "RCV.HOLD.SEQ1"
        case .holdLen1: "RCV.HOLD.LEN1"
        case .holdSeq2: "RCV.HOLD.SEQ2"
        case .holdLen2: "RCV.HOLD.LEN2"
        case .holdSeq3: "RCV.HOLD.SEQ3"
        case .holdLen3: "RCV.HOLD.LEN3"
        case .holdSeq4: "RCV.HOLD.SEQ4"
        case .holdLen4: "RCV.HOLD.LEN4"
        case .holdSeq5: "RCV.HOLD.SEQ5"
        case .holdLen5: "RCV.HOLD.LEN5"
        case .holdFin: "RCV.HOLD.FIN"
        case .holdFinSeq: "RCV.HOLD.FINSEQ"
        case .holdLost: "RCV.HOLD.LOST"
        case .rcvFin: "RCV.FIN"
        case .substate: "SUBSTATE"
        case .sndWindShift: "SND.WIND.SHIFT"
        case .rcvWindShift: "RCV.WIND.SHIFT"
        case .sackOK: "SACK.OK"
        case .tsOK: "TS.OK"
        case .holdFinEnd: "RCV.HOLD.FINEND"
        }
    }

    /// Registers whose value is an offset from our ISS: symbolic until the target's ISS is observed.
    public var isISSRelative: Bool {
        switch self {
        case .iss, .sndUna, .sndNxt, .sndWl2, .sndUp: true
        default: false
        }
    }

    public static let bySpelling: [String: Register] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.spelling, $0) })
}

/// Fields of the arriving segment (RFC 9293 §3.3.1 "Current Segment Variables") and of the user call.
public enum InputField: UInt8, CaseIterable, Sendable {
    case segSeq, segAck, segLen, segWnd, segUp, segData, callLen
    /// 1 when the segment's TSval is older than TS.Recent (RFC 7323 §5.3 R1), 0 otherwise (`Segment.tsOld`).
    case segTSOld
    /// Derived from the segment and the TCB, not carried by either: the held text (HELD.NEXT, octets) and held
    /// FIN (HELD.FIN, 0 or 1) that become contiguous with RCV.NXT once this segment's own text is taken — what a
    /// segment that fills a gap, or the ACK that completes a handshake after text came with the SYN, releases.
    case heldNext, heldFin
    /// Derived from the timers: keep-alive probes the application allows before the connection is given up,
    /// less those sent unanswered (all ones when it set no count).
    case keepaliveLeft
    /// Derived from the TCB: the sequence number just past the highest text (or FIN) held beyond RCV.NXT — the right
    /// edge of the highest SACK block the endpoint reports — or RCV.NXT when nothing is held.
    case heldEnd
    /// 1 when the segment's TSecr echoes a TSval the receiver never sent, one 2^20 ahead of its latest
    /// (`OptionOddity.futureEcho`), 0 otherwise. RFC 7323 reads TSecr for RTTM only; a profile states a stack that
    /// checks it (linux: a request socket's tcp_check_req "tsecr_reject").
    case segECRFuture

    public var spelling: String {
        switch self {
        case .segSeq: "SEG.SEQ"
        case .segAck: "SEG.ACK"
        case .segLen: "SEG.LEN"
        case .segWnd: "SEG.WND"
        case .segUp: "SEG.UP"
        case .segData: "SEG.DATA"
        case .callLen: "CALL.LEN"
        case .segTSOld: "SEG.TSOLD"
        case .heldNext: "HELD.NEXT"
        case .heldFin: "HELD.FIN"
        case .keepaliveLeft: "KEEPALIVE.LEFT"
        case .heldEnd: "HELD.END"
        case .segECRFuture: "SEG.ECRFUTURE"
        }
    }

    public static let bySpelling: [String: InputField] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.spelling, $0) })
}


/// The events of RFC 9293 §3.10: user calls, arriving segments, timeouts.
public enum EventKind: UInt8, CaseIterable, Sendable, Hashable, BitwiseCopyable {
    case segment, openActive, openPassive, send, receive, close, abort, status
    /// The application's half-close (`shutdown(SHUT_WR)`): no more to send, still receiving. RFC 9293 has no such
    /// call because its CLOSE is this half-close already (§3.6.1 "the user who CLOSEs may continue to RECEIVE");
    /// a state with no SHUTDOWN rules of its own takes CLOSE's. A profile whose CLOSE is a full close (Linux's
    /// `close()`, RFC 9293 MAY-1) gives SHUTDOWN rules where the two differ.
    case shutdown
    case userTimeout, retransmissionTimeout, timeWaitTimeout
    /// The keep-alive timer's expiry (RFC 9293 §3.8.4): an idle connection's probe, when the application turned
    /// keep-alives on.
    case keepaliveTimeout

    /// `allCases.count` without building the array (`allCases` allocates; this is read per transition).
    @inlinable public static var count: Int { Int(EventKind.keepaliveTimeout.rawValue) + 1 }

    public var spelling: String {
        switch self {
        case .segment: "SEGMENT"
        case .openActive: "OPEN-ACTIVE"
        case .openPassive: "OPEN-PASSIVE"
        case .send: "SEND"
        case .receive: "RECEIVE"
        case .close: "CLOSE"
        case .abort: "ABORT"
        case .status: "STATUS"
        case .shutdown: "SHUTDOWN"
        case .userTimeout: "USER-TIMEOUT"
        case .retransmissionTimeout: "RETRANSMISSION-TIMEOUT"
        case .timeWaitTimeout: "TIME-WAIT-TIMEOUT"
        case .keepaliveTimeout: "KEEPALIVE-TIMEOUT"
        }
    }

    public var isUserCall: Bool { !isTimeout && self != .segment }
    public var isTimeout: Bool { TimerName(expiring: self) != nil }

    public static let bySpelling: [String: EventKind] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.spelling, $0) })
}

/// Actions whose RFC text is a procedure rather than an assignment. Each is documented in docs/spec-language.md.
public enum Builtin: UInt8, CaseIterable, Sendable {
    /// Segmentize queued SEND data (and a pending FIN once the queue is empty) within the send window.
    case transmit
    /// Send the segment at the front of the retransmission queue again (data and/or FIN from SND.UNA).
    case retransmit
    /// Take the in-window text of the segment at RCV.NXT: advance RCV.NXT, queue it for RECEIVE, shrink RCV.WND.
    case acceptText
    /// Hold an in-window segment that starts beyond RCV.NXT for later processing (RFC 9293 SHLD-31).
    case hold
    /// Hand queued received octets (up to CALL.LEN) to the user and reopen the window by as much.
    case deliver
    /// Flush the send and retransmission queues.
    case flush
    /// Select an initial send sequence number (RFC 9293 §3.4.1): the target's choice, symbolic until observed.
    case selectISS
    /// The segments formed so far leave now: a later segment of the same input does not carry their
    /// acknowledgment instead (the model aggregates ACKs otherwise, MUST-58; Linux's tcp_send_ack is immediate).
    case push

    public var spelling: String {
        switch self {
        case .transmit: "transmit"
        case .retransmit: "retransmit"
        case .acceptText: "accept-text"
        case .hold: "hold"
        case .deliver: "deliver"
        case .flush: "flush"
        case .selectISS: "select-iss"
        case .push: "push"
        }
    }

    public static let bySpelling: [String: Builtin] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.spelling, $0) })
}

public enum TimerName: UInt8, CaseIterable, Sendable {
    case timeWait, retransmission, user
    /// Runs while keep-alives are on and the connection is idle (RFC 9293 §3.8.4); built in, see `TCPModel`.
    case keepalive
    public var spelling: String {
        switch self {
        case .timeWait: "time-wait"
        case .retransmission: "retransmission"
        case .user: "user"
        case .keepalive: "keepalive"
        }
    }
    public static let bySpelling: [String: TimerName] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.spelling, $0) })

    /// The timer whose expiry is the event `e` (nil for an event no timer causes).
    public init?(expiring e: EventKind) {
        switch e {
        case .retransmissionTimeout: self = .retransmission
        case .timeWaitTimeout: self = .timeWait
        case .userTimeout: self = .user
        case .keepaliveTimeout: self = .keepalive
        default: return nil
        }
    }
}

/// The timing values a profile sets with `timing NAME …` (RFC 6298, RFC 9293 §3.8.1, §3.8.6.3, §3.10.8).
public enum TimingName: String, CaseIterable, Sendable {
    /// The RTO before any round-trip sample: the first retransmission of a SYN, a SYN,ACK, or early data.
    case rtoInitial = "rto.initial"
    /// The RTO's floor once computed.
    case rtoMin = "rto.min"
    /// The RTO's ceiling, however often it is backed off.
    case rtoMax = "rto.max"
    /// The RTO once data transmission begins after the SYN (or SYN,ACK) timed out and no round trip could be
    /// measured (RFC 6298 §5.7: 3 s).
    case rtoAfterSynTimeout = "rto.after-syn-timeout"
    /// The factor each expiry multiplies the RTO by (a number).
    case rtoBackoff = "rto.backoff"
    /// How many SYN retransmissions (SYN-SENT) keep the RTO without backing it off (a number; Linux's
    /// `tcp_syn_linear_timeouts`).
    case rtoSynLinear = "rto.syn-linear"
    /// TIME-WAIT's length (2 MSL), from the last segment that started or restarted it.
    case timeWait = "time-wait"
    /// How long an acknowledgment may be delayed.
    case delayedAck = "delayed-ack"
    /// R2 (RFC 9293 §3.8.3): how long the same segment may go unacknowledged, from its first retransmission,
    /// before the connection is closed (the `user` timer); `r2.syn` while the segment is a SYN or SYN,ACK.
    case r2 = "r2"
    case r2Syn = "r2.syn"
    /// How long an orphaned FIN-WAIT-2 waits for the peer's FIN (not in the RFCs: Linux's tcp_fin_timeout), on
    /// the time-wait timer; never less than 3.5 RTO (tcp_fin_time).
    case finTimeout = "fin-timeout"
    /// Keep-alive (RFC 9293 §3.8.4): how long the connection is idle before the first probe, the interval between
    /// unanswered probes, and how many go unanswered before the connection is given up (a number). Only an
    /// application setting turns keep-alives on (MUST-24, MUST-25): a profile may not set these.
    case keepaliveIdle = "keepalive.idle"
    case keepaliveInterval = "keepalive.interval"
    case keepaliveProbes = "keepalive.probes"
    public var spelling: String { rawValue }
    /// Whether its value is a duration (all but the backoff factor and the counts).
    public var isDuration: Bool { self != .rtoBackoff && self != .rtoSynLinear && self != .keepaliveProbes }
    /// Set by the application, never by a profile.
    public var isApplicationSetting: Bool { self == .keepaliveIdle || self == .keepaliveInterval || self == .keepaliveProbes }
}

public enum TimerOp: UInt8, Sendable {
    case start, stop
}

/// Names the lexer treats as variables: a `-` after one of them is a minus sign, not part of a hyphenated name.
let variableSpellings: Set<String> = Set(Register.allCases.map(\.spelling)).union(InputField.allCases.map(\.spelling))
