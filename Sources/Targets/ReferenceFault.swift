import Core
/// A seeded fault: one rule of the reference stack broken on purpose, written as a spec overlay over the profile
/// the stack follows (rfc9293 rule names). The fuzzer must find and minimize each.
public struct ReferenceFault: Hashable, Sendable {
    public var name: String
    public var summary: String
    /// Overlay text without its profile line.
    var body: String
    /// The application setting the fault needs to show (a keep-alive fault needs keep-alives on): its target
    /// turns it on unless told otherwise.
    public var keepalive: KeepaliveSetting? = nil
    /// The stack delays its acknowledgments this long (a delayed-ACK fault); nil: it acknowledges at once.
    public var ackDelay: Double? = nil
    /// The stack drops a segment carrying an option kind it does not implement (breaking MUST-6): a fault in reading
    /// options, which the spec's tables do not hold; found only through the tester's odd option lists.
    public var dropsUnknownOptions = false

    public func overlay(extending profile: String) -> String {
        "profile fault-\(name) extends \(profile) \"reference stack with a seeded fault: \(summary)\"\n" + body
    }

    public static func named(_ n: String) -> ReferenceFault? { all.first { $0.name == n } }

    /// The faults in a timer (its length or what its expiry does): found by waiting.
    public static let timerFaults = ["rto-no-backoff", "rto-below-min", "timewait-short", "timewait-no-restart", "persist-none", "r2-short", "keepalive-one-probe", "ack-delay-late"]

    public static let all: [ReferenceFault] = [
        ReferenceFault(name: "synrcvd-ignores-rst", summary: "ignores RST in SYN-RECEIVED", body: """
        on SEGMENT in SYN-RECEIVED step rst
          cite RFC 9293 §3.10.7.4
          rule fault.synrcvd.rst when RST and seq is exact replaces synrcvd.rst.passive.exact, synrcvd.rst.active.exact
            drop
        """),
        ReferenceFault(name: "fin-wrong-ack", summary: "acknowledges a FIN in FIN-WAIT-2 with the ACK before it", body: """
        on SEGMENT in FIN-WAIT-2 step fin
          cite RFC 9293 §3.10.7.4
          rule fault.fin.finwait2 when fin is inside replaces fin.finwait2
            send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            set RCV.NXT <- RCV.NXT+1
            enter TIME-WAIT
            return
        """),
        ReferenceFault(name: "listen-ack-no-rst", summary: "no RST for an ACK in LISTEN", body: """
        on SEGMENT in LISTEN step ack
          cite RFC 9293 §3.10.7.2
          rule fault.listen.ack when ACK replaces listen.ack
            drop
        """),
        ReferenceFault(name: "accepts-out-of-window", summary: "accepts segments outside the window without an ACK", body: """
        on SEGMENT in SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT step sequence
          cite RFC 9293 §3.10.7.4
          rule fault.seq.outside when seq is outside and not RST replaces seq.unacceptable, seq.timewait.unacceptable, seq.timewait.fin
            drop
        """),
        ReferenceFault(name: "fin-no-sequence", summary: "a FIN in ESTABLISHED does not consume a sequence number", body: """
        on SEGMENT in ESTABLISHED step fin
          cite RFC 9293 §3.10.7.4
          rule fault.fin.established when fin is inside replaces fin.established
            send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            signal "connection closing"
            enter CLOSE-WAIT
            return
        """),
        ReferenceFault(name: "synsent-bad-ack", summary: "SYN-SENT accepts a SYN,ACK acknowledging something never sent", body: """
        on SEGMENT in SYN-SENT step ack
          cite RFC 9293 §3.10.7.3
          rule fault.synsent.ack when ack in {future, dup, old, ancient} and not RST replaces synsent.ack.bad
            continue
        on SEGMENT in SYN-SENT step syn
          cite RFC 9293 §3.10.7.3
          rule fault.synsent.syn when SYN and ack in {future, dup, old, ancient}
            set RCV.NXT <- SEG.SEQ+1, IRS <- SEG.SEQ, SND.UNA <- SEG.ACK, SND.WND <- SEG.WND
            enter ESTABLISHED
            send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            continue at urg
        """),
        ReferenceFault(name: "timewait-ignores-fin", summary: "TIME-WAIT ignores a retransmitted FIN", body: """
        on SEGMENT in SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT, CLOSING, LAST-ACK step sequence
          cite RFC 9293 §3.10.7.4
          rule fault.seq.unacceptable when seq is outside and not RST replaces seq.unacceptable
            send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            drop
        on SEGMENT in TIME-WAIT step sequence
          cite RFC 9293 §3.10.7.4
          rule fault.timewait.silent when seq is outside and not RST replaces seq.timewait.unacceptable, seq.timewait.fin
            drop
        """),
        ReferenceFault(name: "rst-no-challenge", summary: "an in-window RST resets instead of drawing a challenge ACK", body: """
        on SEGMENT in ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT step rst
          cite RFC 9293 §3.10.7.4
          rule fault.rst.abort when RST and seq is ahead replaces rst.challenge
            signal "connection reset"
            enter CLOSED
            drop
        on SEGMENT in SYN-RECEIVED, CLOSING, LAST-ACK, TIME-WAIT step rst
          cite RFC 9293 §3.10.7.4
          rule fault.rst.challenge.rest when RST and seq is ahead
            send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            drop
        """),
        ReferenceFault(name: "syn-resets", summary: "a SYN in ESTABLISHED resets instead of drawing a challenge ACK", body: """
        on SEGMENT in ESTABLISHED step syn
          cite RFC 793 §3.9 p.71
          rule fault.syn.reset when SYN and seq is not dupsyn
            send <SEQ=SND.NXT><CTL=RST>
            enter CLOSED
            drop
        on SEGMENT in FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT step syn
          cite RFC 9293 §3.10.7.4
          rule fault.syn.challenge.rest when SYN and seq is not dupsyn replaces syn.challenge
            send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            drop
        """),
        ReferenceFault(name: "data-ack-off-by-one", summary: "acknowledges text one octet short", body: """
        on SEGMENT in ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2 step text
          cite RFC 9293 §3.10.7.4
          rule fault.text.accept when text is some replaces text.accept
            accept-text
            send <SEQ=SND.NXT><ACK=RCV.NXT-1><CTL=ACK>
            continue
        """),
        ReferenceFault(name: "closewait-no-fin", summary: "CLOSE in CLOSE-WAIT sends no FIN", body: """
        on CLOSE in CLOSE-WAIT
          cite RFC 9293 §3.10.4
          rule fault.close.closewait otherwise replaces close.closewait
            set FIN.SENT <- 1, SND.NXT <- SND.NXT+1
            enter LAST-ACK
            reply "ok"
        """),
        ReferenceFault(name: "ack-future-accepted", summary: "an ACK of data never sent is taken instead of answered", body: """
        on SEGMENT in ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT, CLOSING step ack
          cite RFC 9293 §3.10.7.4
          rule fault.ack.future when ack is future replaces ack.future
            continue
        """),
        // Timer faults: the stack's timers run on the reference target's virtual clock.
        ReferenceFault(name: "rto-no-backoff", summary: "retransmits at the same RTO every time (no exponential backoff)", body: """
        timing rto.backoff 1
          cite RFC 6298 §5.5 "broken on purpose"
        """),
        ReferenceFault(name: "rto-below-min", summary: "an RTO of 300 ms, before and after a round-trip sample", body: """
        timing rto.initial 300ms
          cite RFC 6298 §2.1 "broken on purpose"
        timing rto.min 300ms
          cite RFC 6298 §2.4 "broken on purpose"
        """),
        ReferenceFault(name: "timewait-short", summary: "TIME-WAIT lasts 30 s, not 2 MSL", body: """
        timing time-wait 30s
          cite RFC 9293 §3.6.1 MUST-13 "broken on purpose"
        """),
        ReferenceFault(name: "timewait-no-restart", summary: "TIME-WAIT acknowledges a retransmitted FIN without restarting 2 MSL", body: """
        on SEGMENT in TIME-WAIT step sequence
          cite RFC 9293 §3.10.7.4
          rule fault.timewait.fin.norestart when seq is outside and not RST and twfin is again replaces seq.timewait.fin
            send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            drop
        on SEGMENT in TIME-WAIT step fin
          cite RFC 9293 §3.10.7.4
          rule fault.fin.timewait.norestart when fin is inside replaces fin.timewait
            send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            return
        """),
        ReferenceFault(name: "persist-none", summary: "never probes a closed window (no zero-window probe)", body: """
        on RETRANSMISSION-TIMEOUT in ESTABLISHED, FIN-WAIT-1, CLOSE-WAIT, CLOSING, LAST-ACK
          cite RFC 9293 §3.8.6.1 MUST-36
          rule fault.persist.none when window is closed replaces persist.probe
            timer retransmission start
        """),
        ReferenceFault(name: "r2-short", summary: "gives a connection up 5 s after a segment's first retransmission (R2 far below 100 s)", body: """
        timing r2 5s
          cite RFC 9293 §3.8.3 SHLD-11 "broken on purpose"
        """),
        // Keep-alives on (idle 60 s, 10 s apart, three allowed): the stack gives up after the first goes unanswered.
        ReferenceFault(name: "keepalive-one-probe", summary: "gives a connection up when one keep-alive probe goes unanswered", body: """
        classify probes override on KEEPALIVE-TIMEOUT in ESTABLISHED, FIN-WAIT-2, CLOSE-WAIT
          cite RFC 9293 §3.8.4 MUST-29 "broken on purpose"
          case spent    if KEEPALIVE.LEFT < 3
          case left     otherwise
        """, keepalive: KeepaliveSetting(idle: 60, interval: 10, probes: 3)),
        // Its rules are the profile's; it holds every ACK of text or a FIN 600 ms, past RFC 9293's bound.
        ReferenceFault(name: "ack-delay-late", summary: "holds the ACK of text or a FIN back 600 ms (a delayed ACK past 0.5 s)", body: "", ackDelay: 0.6),
        ReferenceFault(name: "unknown-option-drop", summary: "drops a segment carrying an option kind it does not implement (MUST-6)", body: "", dropsUnknownOptions: true),
    ]
}
