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
}
