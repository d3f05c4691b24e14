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
}
