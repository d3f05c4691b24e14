import Core
import Model
import Spec
import Testing

/// RFC 9293 §3.10.7.4 clauses the spec once contradicted, input by input: each test fails on the spec before its
/// fix and passes after.
@Suite("RFC 9293 §3.10.7.4, clause by clause")
struct EventProcessingTests {
    static func outputs(_ t: Transition) -> [String] { t.outputs.map { figure($0.segment) } }

    /// ESTABLISHED from a passive open: our ISS 1000 (SND.NXT 1001), the peer's 5000 (RCV.NXT 5001).
    static func established(_ profile: String, window: UInt32 = 1000) throws -> TCPModel {
        try ProfileDifferenceTests.established(profile, window: window)
    }

    /// "1) If the RST bit is set and the sequence number is outside the current receive window, silently drop the
    /// segment": a RST whose text reaches into the window passes the four-case test, but its sequence number lies
    /// before RCV.NXT. Linux's tcp_validate_incoming challenges it (Step 2 resets only at RCV.NXT and challenges
    /// every other RST that passed tcp_sequence).
    @Test("a RST starting before RCV.NXT is dropped silently (RFC 9293), challenged by Linux")
    func rstBeforeWindow() throws {
        let rst = Segment(seq: 4995, ack: 1001, ctl: [.rst, .ack], dataLength: 10)
        var r = try Self.established("rfc9293")
        let t = r.receive(rst)
        #expect(Self.outputs(t).isEmpty, "\(Self.outputs(t)) by \(t.outputs.map { r.spec.rules[$0.rule].id })")
        #expect(r.stateName == "ESTABLISHED")
        var l = try Self.established("linux")
        let u = l.receive(rst)
        #expect(Self.outputs(u) == ["<SEQ=1001><ACK=5001><CTL=ACK>"])
        #expect(u.outputs.map { l.spec.rules[$0.rule].id } == ["linux.rst.challenge"])
        #expect(l.stateName == "ESTABLISHED")
        // Inside the window, not at RCV.NXT: still a challenge ACK in both.
        for p in ["rfc9293", "linux"] {
            var m = try Self.established(p)
            #expect(Self.outputs(m.receive(Segment(seq: 5002, ack: 1001, ctl: [.rst, .ack], dataLength: 10))) == ["<SEQ=1001><ACK=5001><CTL=ACK>"], "\(p)")
        }
    }

    /// CLOSE-WAIT: the peer's FIN at 5001 is in (RCV.NXT 5002).
    static func closeWait(_ profile: String) throws -> TCPModel {
        var m = try Self.established(profile)
        _ = m.receive(Segment(seq: 5001, ack: 1001, ctl: [.fin, .ack], window: 8000))
        #expect(m.stateName == "CLOSE-WAIT" && m[.rcvNxt] == 5002)
        return m
    }

    /// TIME-WAIT by the normal close: our FIN (1001) acknowledged, then the peer's at 5001 (RCV.NXT 5002).
    static func timeWait(_ profile: String) throws -> TCPModel {
        var m = try Self.established(profile)
        _ = m.call(.close)
        _ = m.receive(Segment(seq: 5001, ack: 1002, ctl: .ack, window: 8000))
        _ = m.receive(Segment(seq: 5001, ack: 1002, ctl: [.fin, .ack], window: 8000))
        #expect(m.stateName == "TIME-WAIT" && m[.rcvNxt] == 5002)
        return m
    }

    /// Seventh step, CLOSE-WAIT ... TIME-WAIT: "This should not occur, since a FIN has been received from the
    /// remote side. Ignore the segment text." Eighth: "Remain in the CLOSE-WAIT state" — the FIN is a
    /// retransmission. The text is thrown away, so the acknowledgment must not cover it: RCV.NXT stays (it used
    /// to advance by one, acknowledging the first octet of the ignored text).
    @Test("a FIN with text after the peer's FIN: the text is ignored and not acknowledged", arguments: ["rfc793", "rfc9293"])
    func finAfterFin(profile: String) throws {
        let again = Segment(seq: 5002, ack: 1001, ctl: [.fin, .ack], window: 8000, dataLength: 10)
        var cw = try Self.closeWait(profile)
        #expect(Self.outputs(cw.receive(again)) == ["<SEQ=1001><ACK=5002><CTL=ACK>"])
        #expect(cw.stateName == "CLOSE-WAIT" && cw[.rcvNxt] == 5002)
        // Without text as well: one FIN per connection, RCV.NXT already one past it.
        #expect(Self.outputs(cw.receive(Segment(seq: 5002, ack: 1001, ctl: [.fin, .ack], window: 8000))) == ["<SEQ=1001><ACK=5002><CTL=ACK>"])
        #expect(cw[.rcvNxt] == 5002)
        var tw = try Self.timeWait(profile)
        #expect(Self.outputs(tw.receive(Segment(seq: 5002, ack: 1002, ctl: [.fin, .ack], window: 8000, dataLength: 10))) == ["<SEQ=1002><ACK=5002><CTL=ACK>"])
        #expect(tw.stateName == "TIME-WAIT" && tw[.rcvNxt] == 5002)
    }

    /// Linux reads a segment after the peer's FIN only if it starts before RCV.NXT (linux.rcvshut.*): old text
    /// ending at RCV.NXT with a FIN there is queued whole, RCV.NXT moves over the second FIN (tcp_queue_rcv) and
    /// tcp_fin ignores it — no text is thrown away, and the acknowledgment covers that FIN (linux.fin.remain).
    @Test("Linux: old text with a FIN at RCV.NXT after the peer's FIN advances RCV.NXT over it")
    func linuxFinAfterFin() throws {
        var m = try Self.closeWait("linux")
        let t = m.receive(Segment(seq: 5000, ack: 1001, ctl: [.fin, .ack], window: 8000, dataLength: 2))
        #expect(Self.outputs(t) == ["<SEQ=1001><ACK=5003><CTL=ACK>"])
        #expect(m.stateName == "CLOSE-WAIT" && m[.rcvNxt] == 5003)
        // Text or a FIN at RCV.NXT is not read at all.
        var n = try Self.closeWait("linux")
        #expect(n.receive(Segment(seq: 5002, ack: 1001, ctl: [.fin, .ack], window: 8000, dataLength: 10)).outputs.isEmpty)
        #expect(n[.rcvNxt] == 5002)
    }

    static func startsTimeWait(_ t: Transition) -> Bool { t.timersStarted & (1 << TimerName.timeWait.rawValue) != 0 }

    /// TIME-WAIT, fifth step: "The only thing that can arrive in this state is a retransmission of the remote FIN.
    /// Acknowledge it, and restart the 2 MSL timeout"; eighth: "Restart the 2 MSL time-wait timeout". The
    /// retransmitted FIN (at RCV.NXT-1) fails the four-case test, so it is the sequence step that acknowledges it
    /// and must restart the timer. Linux's TIME-WAIT minisocket restarts it for every segment with ACK
    /// (tcp_timewait_state_process: "if (paws_reject || th->ack) inet_twsk_reschedule").
    @Test("TIME-WAIT: the peer's FIN again is acknowledged and restarts the 2 MSL timer", arguments: ["rfc793", "rfc9293", "linux"])
    func timeWaitRestart(profile: String) throws {
        var m = try Self.timeWait(profile)
        let t = m.receive(Segment(seq: 5001, ack: 1002, ctl: [.fin, .ack], window: 8000))
        #expect(Self.outputs(t) == ["<SEQ=1002><ACK=5002><CTL=ACK>"])
        #expect(Self.startsTimeWait(t), "rules \(t.outputs.map { m.spec.rules[$0.rule].id })")
        #expect(m.stateName == "TIME-WAIT" && m[.rcvNxt] == 5002)
        // Any other unacceptable segment is acknowledged without restarting it (RFC profiles).
        if profile != "linux" {
            let u = m.receive(Segment(seq: 4000, ack: 1002, ctl: .ack, window: 8000, dataLength: 10))
            #expect(Self.outputs(u) == ["<SEQ=1002><ACK=5002><CTL=ACK>"])
            #expect(!Self.startsTimeWait(u))
        }
    }

    /// ESTABLISHED with the receive window closed: 10 octets of the peer's (5001-5010) fill a 10-octet buffer, unread
    /// (RCV.NXT 5011, RCV.WND 0); 100 octets of ours are out, unacknowledged (SND.UNA 1001, SND.NXT 1101).
    static func zeroWindow(_ profile: String) throws -> TCPModel {
        var m = try Self.established(profile, window: 10)
        _ = m.call(.send(100))
        _ = m.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000, dataLength: 10))
        #expect(m[.rcvNxt] == 5011 && m[.rcvWnd] == 0 && m[.sndNxt] == 1101)
        return m
    }

    /// First step: "If the RCV.WND is zero, no segments will be acceptable, but special allowance should be made to
    /// accept valid ACKs, URGs, and RSTs"; §3.3 "A TCP receiver MUST process the RST and URG fields of all incoming
    /// segments, even when the receive window is zero (MUST-66)". A zero-window probe (an octet at RCV.NXT) carries
    /// a valid ACK: it is processed, the octet is trimmed off, and the acknowledgment shows the closed window. A RST
    /// at RCV.NXT resets whatever it carries.
    @Test("zero window: a probe's ACK and URG are processed, a RST at RCV.NXT resets", arguments: ["rfc793", "rfc9293"])
    func zeroWindowAllowance(profile: String) throws {
        // An empty ACK at RCV.NXT: acceptable by the table itself.
        var a = try Self.zeroWindow(profile)
        #expect(Self.outputs(a.receive(Segment(seq: 5011, ack: 1051, ctl: .ack, window: 8000))).isEmpty)
        #expect(a[.sndUna] == 1051)
        // A probe: one octet at RCV.NXT acknowledging 50 of ours. The ACK counts; the octet does not.
        var b = try Self.zeroWindow(profile)
        let probe = b.receive(Segment(seq: 5011, ack: 1051, ctl: .ack, window: 8000, dataLength: 1))
        #expect(Self.outputs(probe) == ["<SEQ=1101><ACK=5011><CTL=ACK>"])
        #expect(probe.outputs.first?.segment.window == 0)
        #expect(b[.sndUna] == 1051 && b[.rcvNxt] == 5011 && b[.rcvQueue] == 10)
        // Urgent text at RCV.NXT: the user is told, the text is not taken.
        var u = try Self.zeroWindow(profile)
        let urg = u.receive(Segment(seq: 5011, ack: 1001, ctl: [.ack, .urg], window: 8000, urgentPointer: 5, dataLength: 5))
        #expect(urg.signals.map { u.spec.strings[$0] } == ["urgent data"])
        #expect(u[.rcvUp] == 5016 && u[.rcvNxt] == 5011)
        // A RST at RCV.NXT, empty or with text (a diagnostic, RFC 9293 §3.5.3): the connection is reset.
        for len: UInt32 in [0, 20] {
            var r = try Self.zeroWindow(profile)
            _ = r.receive(Segment(seq: 5011, ctl: .rst, dataLength: len))
            #expect(r.stateName == "CLOSED", "RST with \(len) octets")
        }
    }

    /// What the allowance does not stretch to (interpretations, docs/spec-language.md): an empty ACK beyond RCV.NXT
    /// is outside the zero window as Table 6 has it (only SEG.SEQ = RCV.NXT is acceptable), and is answered; a FIN
    /// without text at RCV.NXT is beyond the window too, and answered (its ACK comes again with the FIN).
    @Test("zero window: an empty ACK beyond RCV.NXT and a bare FIN stay unacceptable", arguments: ["rfc793", "rfc9293"])
    func zeroWindowLimits(profile: String) throws {
        var a = try Self.zeroWindow(profile)
        #expect(Self.outputs(a.receive(Segment(seq: 5012, ack: 1051, ctl: .ack, window: 8000))) == ["<SEQ=1101><ACK=5011><CTL=ACK>"])
        #expect(a[.sndUna] == 1001)
        var f = try Self.zeroWindow(profile)
        #expect(Self.outputs(f.receive(Segment(seq: 5011, ack: 1051, ctl: [.fin, .ack], window: 8000))) == ["<SEQ=1101><ACK=5011><CTL=ACK>"])
        #expect(f.stateName == "ESTABLISHED" && f[.rcvNxt] == 5011)
    }

    /// FIN-WAIT-2 and CLOSING fifth: "In addition to the processing for the ESTABLISHED state": a duplicate ACK
    /// in FIN-WAIT-2, and the ACK of our FIN in CLOSING, update the send window as ESTABLISHED's does ("If
    /// SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated").
    @Test("FIN-WAIT-2's duplicate ACK and CLOSING's ACK of our FIN update the send window")
    func windowUpdatesAfterClose() throws {
        for p in ["rfc793", "rfc9293"] {
            // FIN-WAIT-2: CLOSE (our FIN at 1001), the peer acknowledges it, then a duplicate ACK with a new window.
            var m = try Self.established(p)
            _ = m.call(.close)
            _ = m.receive(Segment(seq: 5001, ack: 1002, ctl: .ack, window: 1000))
            #expect(m.stateName == "FIN-WAIT-2", "\(p)")
            _ = m.receive(Segment(seq: 5001, ack: 1002, ctl: .ack, window: 4321))
            if p == "rfc9293" { #expect(m[.sndWnd] == 4321, "\(p): SND.WND \(m[.sndWnd])") }
            // CLOSING: both FINs cross; the ACK of ours carries a new window.
            var c = try Self.established(p)
            _ = c.call(.close)
            _ = c.receive(Segment(seq: 5001, ack: 1001, ctl: [.fin, .ack], window: 1000))
            #expect(c.stateName == "CLOSING", "\(p)")
            _ = c.receive(Segment(seq: 5002, ack: 1002, ctl: .ack, window: 2345))
            #expect(c.stateName == "TIME-WAIT", "\(p)")
            #expect(c[.sndWnd] == 2345, "\(p): SND.WND \(c[.sndWnd])")
        }
    }

    /// RFC 9293 §3.10.8: "For any state if the retransmission timeout expires on a segment in the retransmission
    /// queue, send the segment at the front of the retransmission queue again". After a CLOSE in SYN-RECEIVED
    /// (the FIN goes out before our SYN is acknowledged), the front is the SYN,ACK, not text in the SYN's place.
    @Test("a retransmission timeout with our SYN unacknowledged resends the SYN,ACK")
    func retransmitSynFirst() throws {
        for p in ["rfc793", "rfc9293"] {
            var m = TCPModel(spec: try spec(p), configuration: .init(receiveWindow: 1000))
            _ = m.call(.openPassive)
            _ = m.receive(Segment(seq: 5000, ctl: .syn, window: 8000), iss: 1000)
            _ = m.call(.close)
            #expect(m.stateName == "FIN-WAIT-1", "\(p)")
            let t = m.timeout(.retransmission)
            #expect(Self.outputs(t) == ["<SEQ=1000><ACK=5001><CTL=SYN,ACK>"], "\(p): \(Self.outputs(t))")
        }
    }

    /// "Segments with higher beginning sequence numbers SHOULD be held for later processing" (SHLD-31): every
    /// separate range, and the FIN. Before, the model held one range of text: the text behind a second gap and a
    /// FIN that came out of order were forgotten, so a stack that holds whole segments diverged when the gaps filled.
    @Test("held segments: several ranges and the FIN are processed once the gaps fill", arguments: ["rfc793", "rfc9293", "linux"])
    func heldRangesAndFin(profile p: String) throws {
        var m = try Self.established(p)
        // RCV.NXT 5001. Text at 5011-5020, 5031-5040, then a FIN after text at 5041-5050 (FIN at 5051).
        _ = m.receive(Segment(seq: 5011, ack: 1001, ctl: .ack, window: 8000, dataLength: 10))
        _ = m.receive(Segment(seq: 5031, ack: 1001, ctl: .ack, window: 8000, dataLength: 10))
        _ = m.receive(Segment(seq: 5041, ack: 1001, ctl: [.fin, .ack], window: 8000, dataLength: 10))
        #expect(m[.rcvNxt] == 5001 && m.stateName == "ESTABLISHED", "\(p)")
        // The first gap: RCV.NXT reaches 5021 only (the second gap, 5021-5030, is still open).
        let a = m.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000, dataLength: 10))
        #expect(Self.outputs(a) == ["<SEQ=1001><ACK=5021><CTL=ACK>"], "\(p): \(Self.outputs(a))")
        #expect(m.stateName == "ESTABLISHED", "\(p)")
        if p != "linux" { #expect(a.outputs.map { m.spec.rules[$0.rule].id } == ["text.accept.held"], "\(p)") }
        // The second gap: the held text up to 5050 and the held FIN are in; CLOSE-WAIT, FIN acknowledged.
        let b = m.receive(Segment(seq: 5021, ack: 1001, ctl: .ack, window: 8000, dataLength: 10))
        #expect(Self.outputs(b) == ["<SEQ=1001><ACK=5052><CTL=ACK>"], "\(p): \(Self.outputs(b))")
        #expect(m.stateName == "CLOSE-WAIT", "\(p)")
        #expect(m[.rcvQueue] == 50, "\(p): RCV.QUEUE \(m[.rcvQueue])")
        if p != "linux" {
            #expect(b.outputs.map { m.spec.rules[$0.rule].id } == ["fin.held.established"], "\(p)")
        }
    }

    /// Overlapping and touching held ranges merge, a retransmission of held text changes nothing, and a FIN-only
    /// segment out of order is held too.
    @Test("held ranges merge; an empty FIN out of order is held", arguments: ["rfc9293", "linux"])
    func heldMerge(profile p: String) throws {
        var m = try Self.established(p)
        _ = m.receive(Segment(seq: 5011, ack: 1001, ctl: .ack, window: 8000, dataLength: 10)) // 5011-5020
        _ = m.receive(Segment(seq: 5016, ack: 1001, ctl: .ack, window: 8000, dataLength: 10)) // 5016-5025: overlaps
        _ = m.receive(Segment(seq: 5026, ack: 1001, ctl: .ack, window: 8000, dataLength: 5))  // 5026-5030: touches
        _ = m.receive(Segment(seq: 5011, ack: 1001, ctl: .ack, window: 8000, dataLength: 10)) // again
        _ = m.receive(Segment(seq: 5031, ack: 1001, ctl: [.fin, .ack], window: 8000))           // FIN at 5031
        let t = m.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000, dataLength: 10))
        #expect(Self.outputs(t) == ["<SEQ=1001><ACK=5032><CTL=ACK>"], "\(p): \(Self.outputs(t))")
        #expect(m.stateName == "CLOSE-WAIT" && m[.rcvQueue] == 30, "\(p): \(m.stateName) \(m[.rcvQueue])")
    }

    /// RFC 9293 §3.10.7.2 LISTEN, third: "any other control or text should be queued for processing later"; "any
    /// other incoming control or data (combined with SYN) will be processed in the SYN-RECEIVED state, but
    /// processing of SYN and ACK should not be repeated." The SYN,ACK acknowledges the SYN alone; the ACK that
    /// completes the handshake releases the text (acknowledged) and the FIN (CLOSE-WAIT). Linux drops both.
    @Test("text and a FIN on a SYN in LISTEN are queued and processed once the handshake completes")
    func synTextQueued() throws {
        for p in ["rfc793", "rfc9293"] {
            var m = TCPModel(spec: try spec(p), configuration: .init(receiveWindow: 1000))
            _ = m.call(.openPassive)
            let s = m.receive(Segment(seq: 5000, ctl: [.syn, .fin], window: 8000, dataLength: 20), iss: 1000)
            #expect(Self.outputs(s) == ["<SEQ=1000><ACK=5001><CTL=SYN,ACK>"], "\(p): \(Self.outputs(s))")
            let a = m.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000))
            #expect(Self.outputs(a) == ["<SEQ=1001><ACK=5022><CTL=ACK>"], "\(p): \(Self.outputs(a))")
            #expect(m.stateName == "CLOSE-WAIT" && m[.rcvQueue] == 20, "\(p): \(m.stateName)")
            #expect(a.outputs.map { m.spec.rules[$0.rule].id } == ["fin.held.established"], "\(p)")
            // Text alone: acknowledged by the queued step, ESTABLISHED.
            var n = TCPModel(spec: try spec(p), configuration: .init(receiveWindow: 1000))
            _ = n.call(.openPassive)
            _ = n.receive(Segment(seq: 5000, ctl: .syn, window: 8000, dataLength: 20), iss: 1000)
            let b = n.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000))
            #expect(Self.outputs(b) == ["<SEQ=1001><ACK=5021><CTL=ACK>"], "\(p): \(Self.outputs(b))")
            #expect(b.outputs.map { n.spec.rules[$0.rule].id } == ["text.accept.held"], "\(p)")
            #expect(n.stateName == "ESTABLISHED", "\(p)")
        }
        var l = TCPModel(spec: try spec("linux"), configuration: .init(receiveWindow: 1000))
        _ = l.call(.openPassive)
        _ = l.receive(Segment(seq: 5000, ctl: .syn, window: 8000, dataLength: 20), iss: 1000)
        let c = l.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000))
        #expect(Self.outputs(c).isEmpty && l.stateName == "ESTABLISHED", "linux: \(Self.outputs(c))")
    }

    /// RFC 9293 §3.10.7.3 SYN-SENT, fourth: "If there are other controls or text in the segment, queue them for
    /// processing after the ESTABLISHED state has been reached." A bare SYN with text crossing ours.
    @Test("text on a bare SYN in SYN-SENT is queued until ESTABLISHED (dropped by Linux)")
    func synSentTextQueued() throws {
        for p in ["rfc9293", "linux"] {
            var m = TCPModel(spec: try spec(p), configuration: .init(receiveWindow: 1000))
            _ = m.call(.openActive, iss: 1000)
            let s = m.receive(Segment(seq: 5000, ctl: .syn, window: 8000, dataLength: 20))
            #expect(Self.outputs(s) == ["<SEQ=1000><ACK=5001><CTL=SYN,ACK>"], "\(p): \(Self.outputs(s))")
            #expect(m.stateName == "SYN-RECEIVED", "\(p)")
            let a = m.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000))
            #expect(m.stateName == "ESTABLISHED", "\(p)")
            #expect(Self.outputs(a) == (p == "linux" ? [] : ["<SEQ=1001><ACK=5021><CTL=ACK>"]), "\(p): \(Self.outputs(a))")
        }
    }
}
