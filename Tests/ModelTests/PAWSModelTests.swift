import Core
import Model
import Spec
import Testing

/// PAWS (RFC 7323 §5.3 R1) in the profiles: once both SYNs carried Timestamps (TS.OK), a segment whose TSval is older
/// than TS.Recent (SEG.TSOLD) is not acceptable unless it is a RST; Linux's kinds of socket each answer it their way.
@Suite("PAWS in the model")
struct PAWSModelTests {
    /// ESTABLISHED from an active open: ISS 1000 (SND.NXT 1001), the peer's 5000 (RCV.NXT 5001).
    static func established(_ profile: String, timestamps: Bool = true) throws -> Endpoint {
        var e = Endpoint(try spec(profile), profile)
        _ = e.call(.openActive, iss: 1000)
        _ = e.m.adopt(.timestampsAgreed(timestamps))
        _ = e.receive(Segment(seq: 5000, ack: 1001, ctl: [.syn, .ack], window: 65535))
        #expect(e.state == "ESTABLISHED")
        #expect(e.m[.tsOK] == (timestamps ? 1 : 0))
        return e
    }

    static let dupACK = "<SEQ=1001><ACK=5001><CTL=ACK>"

    @Test("text with an old TSval is acknowledged and dropped (rfc9293, linux); without Timestamps agreed, or under rfc793, it is taken", arguments: ["rfc9293", "linux", "rfc793"])
    func oldText(profile: String) throws {
        let paws = profile != "rfc793"
        var e = try PAWSModelTests.established(profile)
        let out = e.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 65535, dataLength: 10, tsOld: true))
        if paws {
            #expect(figures(out) == [PAWSModelTests.dupACK], "\(profile)")
            #expect(e.m[.rcvNxt] == 5001 && e.state == "ESTABLISHED", "\(profile)")
        } else {
            #expect(e.m[.rcvNxt] == 5011, "RFC 793 has no PAWS")
        }
        var off = try PAWSModelTests.established(profile, timestamps: false)
        _ = off.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 65535, dataLength: 10, tsOld: true))
        #expect(off.m[.rcvNxt] == 5011, "\(profile): no TS.OK, no PAWS")
    }

    @Test("a RST with an old TSval resets all the same (R1's exception)", arguments: ["rfc9293", "linux"])
    func oldRST(profile: String) throws {
        var e = try PAWSModelTests.established(profile)
        let out = e.receive(Segment(seq: 5001, ctl: .rst, window: 0, tsOld: true))
        #expect(out.isEmpty && e.state == "CLOSED", "\(profile): \(figures(out)) \(e.state)")
    }

    @Test("linux drops a pure ACK before RCV.NXT with an old TSval without the duplicate ACK rfc9293 sends; a SYN gets the challenge ACK")
    func oldPureACK() throws {
        for (profile, expected) in [("rfc9293", [PAWSModelTests.dupACK]), ("linux", [])] {
            var e = try PAWSModelTests.established(profile)
            let out = e.receive(Segment(seq: 5000, ack: 1001, ctl: .ack, window: 65535, tsOld: true))
            #expect(figures(out) == expected && e.state == "ESTABLISHED", "\(profile): \(figures(out))")
            // At RCV.NXT it is not "old" to tcp_disordered_ack_check: acknowledged.
            let atNext = e.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 65535, tsOld: true))
            #expect(figures(atNext) == [PAWSModelTests.dupACK], "\(profile)")
            let syn = e.receive(Segment(seq: 5001, ack: 1001, ctl: [.syn, .ack], window: 65535, tsOld: true))
            #expect(figures(syn) == [PAWSModelTests.dupACK] && e.state == "ESTABLISHED", "\(profile): \(figures(syn))")
        }
        // A segment without ACK, RST or SYN is dropped by Linux before PAWS is checked.
        var l = try PAWSModelTests.established("linux")
        #expect(l.receive(Segment(seq: 5001, ctl: [], window: 65535, dataLength: 10, tsOld: true)).isEmpty)
    }

    @Test("linux's request socket checks the ACK field before PAWS; a full SYN-RECEIVED checks PAWS first")
    func synReceived() throws {
        func request(ack: UInt32) throws -> (String, [String]) {
            var e = Endpoint(try spec("linux"), "linux")
            _ = e.call(.openPassive)
            _ = e.receive(Segment(seq: 5000, ctl: .syn, window: 65535), iss: 1000)
            _ = e.m.adopt(.timestampsAgreed(true))
            #expect(e.state == "SYN-RECEIVED")
            let out = e.receive(Segment(seq: 5001, ack: ack, ctl: .ack, window: 65535, tsOld: true))
            return (e.state, figures(out))
        }
        let good = try request(ack: 1001)
        #expect(good.0 == "SYN-RECEIVED" && good.1 == [PAWSModelTests.dupACK], "\(good)")
        let bad = try request(ack: 999)
        #expect(bad.1 == ["<SEQ=999><CTL=RST>"], "a wrong ACK still goes to the listener: \(bad)")
        // Linux's request socket applies PAWS to a RST too (tcp_paws_reject, within a minute): dropped, no reset —
        // where its full sockets, and RFC 7323 R1, take it (a main-job run showed both).
        var req = Endpoint(try spec("linux"), "linux")
        _ = req.call(.openPassive)
        _ = req.receive(Segment(seq: 5000, ctl: .syn, window: 65535), iss: 1000)
        _ = req.m.adopt(.timestampsAgreed(true))
        #expect(req.receive(Segment(seq: 5001, ctl: .rst, window: 0, tsOld: true)).isEmpty && req.state == "SYN-RECEIVED")
        #expect(req.receive(Segment(seq: 5001, ctl: .rst, window: 0)).isEmpty && req.state == "LISTEN")
        // rfc9293: the same ACK with an old TSval is refused in SYN-RECEIVED too.
        var r = Endpoint(try spec("rfc9293"), "rfc9293")
        _ = r.call(.openPassive)
        _ = r.receive(Segment(seq: 5000, ctl: .syn, window: 65535), iss: 1000)
        _ = r.m.adopt(.timestampsAgreed(true))
        #expect(figures(r.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 65535, tsOld: true))) == [PAWSModelTests.dupACK])
        #expect(r.state == "SYN-RECEIVED")
    }

    @Test("TIME-WAIT: an old TSval is acknowledged; linux restarts its timer even for a bare ACK at RCV.NXT", arguments: ["rfc9293", "linux"])
    func timeWait(profile: String) throws {
        var e = try PAWSModelTests.established(profile)
        _ = e.call(.close)
        #expect(e.state == "FIN-WAIT-1")
        _ = e.receive(Segment(seq: 5001, ack: 1002, ctl: [.fin, .ack], window: 65535))
        #expect(e.state == "TIME-WAIT", "\(profile)")
        let t = e.m.receive(Segment(seq: 5002, ack: 1002, ctl: .ack, window: 65535, tsOld: true))
        #expect(t.outputs.map { figure($0.segment) } == ["<SEQ=1002><ACK=5002><CTL=ACK>"], "\(profile)")
        #expect(e.state == "TIME-WAIT")
        let restarted = t.timersStarted & (1 << TimerName.timeWait.rawValue) != 0
        #expect(restarted == (profile == "linux"), "\(profile): timers started \(t.timersStarted)")
        // A RST at RCV.NXT with an old TSval: RFC 7323 R1 exempts it (rfc9293 closes); Linux's minisocket does not.
        _ = e.receive(Segment(seq: 5002, ctl: .rst, window: 0, tsOld: true))
        #expect(e.state == (profile == "linux" ? "TIME-WAIT" : "CLOSED"), "\(profile)")
    }

    /// Ignoring that RST is RFC 1337's choice or PAWS applied to a RST: the class of its own lets the choice's
    /// binding come only from a RST PAWS does not concern (`non-binding` in Spec/choices.toml).
    @Test("TIME-WAIT: a RST at RCV.NXT with an old TSval is a class of its own (rst.close.paws); RFC 1337's alternative ignores it as every RST there")
    func timeWaitOldRST() throws {
        for (profile, rule, plainRule, closes) in [("rfc9293", "rst.close.paws", "rst.close.exact", true), ("rfc9293.rfc1337", "timewait.rst.ignore", "timewait.rst.ignore", false),
                                                  ("linux", "linux.tw.rst", "linux.tw.kill", false)] {
            let sp = try spec(profile)
            var e = Endpoint(sp, profile)
            _ = e.call(.openActive, iss: 1000)
            _ = e.m.adopt(.timestampsAgreed(true))
            _ = e.receive(Segment(seq: 5000, ack: 1001, ctl: [.syn, .ack], window: 65535))
            _ = e.call(.close)
            _ = e.receive(Segment(seq: 5001, ack: 1002, ctl: [.fin, .ack], window: 65535))
            #expect(e.state == "TIME-WAIT", "\(profile)")
            var fresh = e
            let t = e.m.receive(Segment(seq: 5002, ctl: .rst, window: 0, tsOld: true))
            let rules = t.chain >= 0 ? sp.chains[t.chain].rules.map { sp.rules[$0].id } : []
            #expect(rules.contains(rule), "\(profile): \(rules)")
            #expect(t.outputs.isEmpty && e.state == (closes ? "CLOSED" : "TIME-WAIT"), "\(profile)")
            // The same RST with a current TSval is the choice's binding class (linux: Linux kills the minisocket).
            let plain = fresh.m.receive(Segment(seq: 5002, ctl: .rst, window: 0))
            let plainRules = plain.chain >= 0 ? sp.chains[plain.chain].rules.map { sp.rules[$0].id } : []
            #expect(plainRules.contains(plainRule), "\(profile): \(plainRules)")
            #expect(fresh.state == (profile == "rfc9293.rfc1337" ? "TIME-WAIT" : "CLOSED"), "\(profile)")
        }
    }

    /// A RST at RCV.NXT with an old TSval in SYN-RECEIVED: R1 exempts it, so RFC 9293 resets as the origin says
    /// (a verdict against a stack that drops it names RFC 7323 §5.3, not MUST-11); Linux's request socket drops it
    /// (tcp_paws_reject), its full socket (a simultaneous open) takes it.
    @Test("SYN-RECEIVED: a RST at RCV.NXT with an old TSval is exempt from PAWS (synrcvd.rst.*.paws); Linux's request socket drops it")
    func synReceivedOldRST() throws {
        for (profile, passive, rule, state) in [("rfc9293", true, "synrcvd.rst.passive.paws", "LISTEN"), ("rfc9293", false, "synrcvd.rst.active.paws", "CLOSED"),
                                                ("linux", true, "linux.req.paws.rst", "SYN-RECEIVED"), ("linux", false, "linux.synrcvd.rst.full", "CLOSED")] {
            let sp = try spec(profile)
            var e = Endpoint(sp, profile)
            _ = e.call(passive ? .openPassive : .openActive, iss: 1000)
            _ = e.receive(Segment(seq: 5000, ctl: .syn, window: 65535), iss: 1000)
            _ = e.m.adopt(.timestampsAgreed(true))
            #expect(e.state == "SYN-RECEIVED", "\(profile)")
            let t = e.m.receive(Segment(seq: 5001, ctl: .rst, window: 0, tsOld: true))
            let rules = t.chain >= 0 ? sp.chains[t.chain].rules.map { sp.rules[$0].id } : []
            #expect(rules.contains(rule), "\(profile) \(passive): \(rules)")
            #expect(t.outputs.isEmpty && e.state == state, "\(profile) \(passive): \(e.state)")
        }
    }
}
