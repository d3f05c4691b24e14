import Core
import Model
import Spec
import Testing

/// The model's timers: which run after each input, and how long the profile lets each run (RFC 6298, RFC 9293
/// §3.10.8), counted from its latest (re)start.
@Suite("Model timers")
struct TimerTests {
    @Test("SYN-SENT: the first SYN starts the RTO at its initial value; each expiry doubles it (linux: after four linear ones)", arguments: ["rfc9293", "linux"])
    func synBackoff(profile: String) throws {
        var m = TCPModel(spec: try spec(profile))
        let open = m.call(.openActive, iss: 1000)
        #expect(open.timersStarted & (1 << TimerName.retransmission.rawValue) != 0)
        #expect(m.expiry(.retransmission) == ExpiryWindow(lower: 1, upper: 1, timings: [.rtoInitial]))
        let first = m.timeout(.retransmission)
        #expect(first.outputs.map(\.segment.ctl) == [.syn])
        #expect(m.timers.backoffs == 1)
        // Linux resends its SYN every second four times (tcp_syn_linear_timeouts), then doubles.
        let linear = profile == "linux" ? 4 : 0
        for _ in 1..<max(1, linear) {
            #expect(m.expiry(.retransmission)?.lower == 1 && m.expiry(.retransmission)?.timings == [.rtoInitial, .rtoSynLinear])
            _ = m.timeout(.retransmission)
        }
        if linear > 0 {
            #expect(m.expiry(.retransmission)?.lower == 1)
            _ = m.timeout(.retransmission)
        }
        #expect(m.expiry(.retransmission)?.lower == 2 && m.expiry(.retransmission)?.upper == 2)
        _ = m.timeout(.retransmission)
        #expect(m.expiry(.retransmission)?.lower == 4)
        // The SYN,ACK acknowledges a SYN that was sent again: no round-trip sample (Karn's rule), and nothing is
        // outstanding any more, so the timer stops.
        let synack = m.receive(Segment(seq: 5000, ack: 1001, ctl: [.syn, .ack], window: 8000))
        #expect(m.stateName == "ESTABLISHED")
        #expect(synack.timersStopped & (1 << TimerName.retransmission.rawValue) != 0)
        #expect(m.expiry(.retransmission) == nil && m.timers.backoffs == 0 && !m.timers.sampled)
    }

    @Test("data: the RTO after a sample is the floor (rfc9293 1 s, RFC 6298 §2.3-2.4 with a short round trip; linux 200 ms); sending more does not restart it, acknowledging all stops it")
    func dataRTO() throws {
        for (profile, lower, upper) in [("rfc9293", 1.0, 1.0), ("linux", 0.2, 0.2)] as [(String, Double, Double?)] {
            var m = TCPModel(spec: try spec(profile))
            _ = m.call(.openActive, iss: 1000)
            _ = m.receive(Segment(seq: 5000, ack: 1001, ctl: [.syn, .ack], window: 8000))
            #expect(m.timers.sampled, "\(profile)")
            let send = m.call(.send(10))
            #expect(send.timersStarted & (1 << TimerName.retransmission.rawValue) != 0, "\(profile)")
            #expect(m.expiry(.retransmission)?.lower == lower && m.expiry(.retransmission)?.upper == upper, "\(profile)")
            let more = m.call(.send(10))
            #expect(!more.outputs.isEmpty && more.timersStarted & (1 << TimerName.retransmission.rawValue) == 0, "RFC 6298 §5.1 (\(profile))")
            _ = m.receive(Segment(seq: 5001, ack: 1011, ctl: .ack, window: 8000))
            #expect(m.timers.isRunning(.retransmission), "\(profile): 10 octets still outstanding")
            let all = m.receive(Segment(seq: 5001, ack: 1021, ctl: .ack, window: 8000))
            #expect(!m.timers.isRunning(.retransmission) && all.timersStopped & (1 << TimerName.retransmission.rawValue) != 0, "\(profile)")
        }
    }

    @Test("TIME-WAIT runs 2 MSL in rfc9293 (4 min), 60 s in linux; CLOSED has no timer")
    func timeWait() throws {
        for (profile, length) in [("rfc9293", 240.0), ("linux", 60.0)] {
            var m = try EventProcessingTests.timeWait(profile)
            #expect(m.expiry(.timeWait) == ExpiryWindow(lower: length, upper: length, timings: [.timeWait]), "\(profile)")
            #expect(!m.timers.isRunning(.retransmission), "\(profile): our FIN was acknowledged")
            let end = m.timeout(.timeWait)
            #expect(m.stateName == "CLOSED" && m.timers.running == 0 && end.timersStopped != 0, "\(profile)")
        }
    }

    @Test("linux: an orphaned FIN-WAIT-2 minisocket runs fin-timeout on the time-wait timer (the profile's 60 s, or the target's setting), at least 3.5 RTO as backed off; its expiry closes silently; the peer's FIN makes it TIME-WAIT's 60 s")
    func finTimeout() throws {
        func orphaned(_ spec: CompiledSpec, finRetransmissions: Int) -> TCPModel {
            var m = TCPModel(spec: spec)
            _ = m.call(.openActive, iss: 1000)
            _ = m.receive(Segment(seq: 5000, ack: 1001, ctl: [.syn, .ack], window: 8000))
            _ = m.call(.close)
            for _ in 0..<finRetransmissions { _ = m.timeout(.retransmission) }
            _ = m.receive(Segment(seq: 5001, ack: 1002, ctl: .ack, window: 8000))
            return m
        }
        var m = orphaned(try spec("linux"), finRetransmissions: 0)
        #expect(m.stateName == "FIN-WAIT-2" && m.timers.isRunning(.timeWait))
        #expect(m.expiry(.timeWait) == ExpiryWindow(lower: 60, upper: 60, timings: [.finTimeout]))
        var quiet = m
        let end = quiet.timeout(.timeWait)
        #expect(quiet.stateName == "CLOSED" && end.outputs.isEmpty)
        _ = m.receive(Segment(seq: 5001, ack: 1002, ctl: [.fin, .ack], window: 8000))
        #expect(m.stateName == "TIME-WAIT" && m.expiry(.timeWait) == ExpiryWindow(lower: 60, upper: 60, timings: [.timeWait]))
        // The target's tcp_fin_timeout of 1 s; the FIN sent three times and acknowledged without a sample (Karn):
        // the RTO is 200 ms backed off twice, and 3.5 times that, 2.8 s, is the floor.
        let short = try spec("linux").replacingTimings([.finTimeout: Timing(lower: 1, upper: 1, citation: "target setting net.ipv4.tcp_fin_timeout=1")])
        #expect(orphaned(short, finRetransmissions: 0).expiry(.timeWait) == ExpiryWindow(lower: 1, upper: 1, timings: [.finTimeout]))
        let w = try #require(orphaned(short, finRetransmissions: 2).expiry(.timeWait))
        #expect(abs((w.lower ?? 0) - 2.8) < 1e-9 && abs((w.upper ?? 0) - 2.8) < 1e-9 && w.timings.contains(.finTimeout) && w.timings.contains(.rtoBackoff), "\(w)")
        // RFC 9293 has no such timer: FIN-WAIT-2 waits for the FIN.
        #expect(!orphaned(try spec("rfc9293"), finRetransmissions: 0).timers.isRunning(.timeWait))
    }

    @Test("after a timeout the loss window holds a CLOSE's FIN until the retransmitted SYN,ACK is acknowledged (linux, rfc9293.loss-window); rfc9293 sends it at once", arguments: ["rfc9293", "linux", "rfc9293.loss-window"])
    func lossWindow(profile: String) throws {
        var m = TCPModel(spec: try spec(profile))
        _ = m.call(.openActive, iss: 1000)
        _ = m.receive(Segment(seq: 5000, ack: 0, ctl: .syn, window: 8000))
        #expect(m.stateName == "SYN-RECEIVED")
        let again = m.timeout(.retransmission)
        #expect(again.outputs.map(\.segment.ctl) == [[.syn, .ack]])
        let close = m.call(.close)
        #expect(m.stateName == "FIN-WAIT-1")
        let holds = profile != "rfc9293"
        #expect(close.outputs.map(\.segment.ctl) == (holds ? [] : [[.fin, .ack]]), "\(profile)")
        let ack = m.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000))
        #expect(ack.outputs.map(\.segment.ctl) == (holds ? [[.fin, .ack]] : []), "\(profile): the FIN goes with the acknowledgment")
        #expect(m.timers.backoffs == 0 && m.timers.isRunning(.retransmission))
    }

    @Test("linux: an ACK that synchronizes the connection after one SYN,ACK retransmission lifts the loss window (tcp_init_transfer); after two it holds", arguments: [1, 2])
    func lossWindowOneSyn(expiries: Int) throws {
        var m = TCPModel(spec: try spec("linux"))
        _ = m.call(.openActive, iss: 1000)
        _ = m.receive(Segment(seq: 5000, ack: 0, ctl: .syn, window: 8000))
        for _ in 0..<expiries { _ = m.timeout(.retransmission) }
        // Deferred in SYN-RECEIVED; the ACK of ISS (Linux takes it) acknowledges nothing and synchronizes.
        let shut = m.call(.shutdown)
        #expect(shut.outputs.isEmpty && m.stateName == "SYN-RECEIVED")
        let ack = m.receive(Segment(seq: 5001, ack: 1000, ctl: .ack, window: 8000))
        #expect(m.stateName == "FIN-WAIT-1")
        #expect(ack.outputs.map(\.segment.ctl).contains([.fin, .ack]) == (expiries == 1), "\(expiries) expiries: \(ack.outputs.map(\.segment))")
    }

    @Test("linux: a close() in SYN-RECEIVED after a SYN,ACK retransmission keeps the loss window: no segment ended the handshake, and the FIN waits for the SYN,ACK's acknowledgment")
    func lossWindowAfterCloseInSynReceived() throws {
        var m = TCPModel(spec: try spec("linux"))
        _ = m.call(.openActive, iss: 1000)
        _ = m.receive(Segment(seq: 5000, ack: 0, ctl: .syn, window: 8000))
        _ = m.call(.shutdown)
        _ = m.timeout(.retransmission)
        let close = m.call(.close)
        #expect(close.outputs.isEmpty && m.stateName == "FIN-WAIT-1")
        // Measured on 6.18: the peer's FIN with an ACK of ISS is acknowledged; the FIN stays queued (tcp_cwnd_test).
        let fin = m.receive(Segment(seq: 5001, ack: 1000, ctl: [.fin, .ack], window: 8000))
        #expect(m.stateName == "CLOSING")
        #expect(fin.outputs.map(\.segment.ctl) == [[.ack]], "\(fin.outputs.map(\.segment))")
    }

    @Test("linux: a simultaneous open established by an ACK of ISS leaves the SYN,ACK's timer armed, stops R2 (retrans_stamp = 0), and its next start takes the 3 s fallback (no RTT sample, tcp_init_metrics)")
    func establishedWithoutSample() throws {
        var m = TCPModel(spec: try spec("linux").replacingTimings(Timing.applicationR2(3, setting: "TCP_USER_TIMEOUT=3000")))
        _ = m.call(.openActive, iss: 1000)
        _ = m.receive(Segment(seq: 5000, ack: 0, ctl: .syn, window: 8000))
        #expect(m.timers.isRunning(.user))
        _ = m.receive(Segment(seq: 5001, ack: 1000, ctl: .ack, window: 8000))
        #expect(m.stateName == "ESTABLISHED" && !m.timers.isRunning(.user))
        // The armed timer keeps the initial RTO.
        #expect(m.expiry(.retransmission)?.lower == 1)
        let again = m.timeout(.retransmission)
        #expect(again.outputs.map(\.segment.ctl) == [[.syn, .ack]] && m.timers.isRunning(.user))
        // 3 s backed off once: 6 s; R2 (3 s from this retransmission) is due first.
        #expect(m.expiry(.retransmission)?.lower == 6)
        #expect(m.nextExpiry(since: { _ in 0 })?.timer == .user)
    }

    @Test("linux keep-alive: an expiry whose rule restarts nothing (a simultaneous open's unarmed timer) stops the timer; a probe's restarts it")
    func keepaliveExpiryStops() throws {
        let k = Timing.applicationKeepalive(idle: 1, interval: 1, probes: 3, setting: "test")
        var probed = TCPModel(spec: try spec("linux").replacingTimings(k))
        _ = probed.call(.openActive, iss: 1000)
        _ = probed.receive(Segment(seq: 5000, ack: 1001, ctl: [.syn, .ack], window: 8000))
        #expect(probed.timers.isRunning(.keepalive))
        let probe = probed.timeout(.keepalive)
        #expect(probe.outputs.map(\.segment.seq) == [1000] && probed.timers.isRunning(.keepalive) && probed.timers.keepaliveProbes == 1)
        var unarmed = TCPModel(spec: try spec("linux").replacingTimings(k))
        _ = unarmed.call(.openActive, iss: 1000)
        _ = unarmed.receive(Segment(seq: 5000, ack: 0, ctl: .syn, window: 8000))
        _ = unarmed.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000))
        #expect(unarmed.stateName == "ESTABLISHED" && unarmed.timers.isRunning(.keepalive))
        let none = unarmed.timeout(.keepalive)
        // Still running, it would expire again every interval ahead of every other timer of a wait (it did: 64
        // expiries and no fin-timeout in an orphaned FIN-WAIT-2).
        #expect(none.outputs.isEmpty && !unarmed.timers.isRunning(.keepalive))
        #expect(unarmed.nextExpiry(since: { _ in 0 })?.timer != .keepalive)
    }

    @Test("Karn's rule: an acknowledgment of text sent again keeps the backed-off RTO for the next data; one of text sent once resets it (RFC 6298 §3, RFC 9293 §3.8.2)", arguments: ["rfc9293", "linux"])
    func karnKeepsBackoff(profile: String) throws {
        var m = TCPModel(spec: try spec(profile))
        _ = m.call(.openActive, iss: 1000)
        _ = m.receive(Segment(seq: 5000, ack: 1001, ctl: [.syn, .ack], window: 8000))
        let floor = try #require(m.spec.timings[.rtoMin]?.lower)
        _ = m.call(.send(10))
        _ = m.timeout(.retransmission)
        #expect(m.expiry(.retransmission)?.lower == 2 * floor)
        // The retransmitted text acknowledged: no sample, the doubled RTO times the next data.
        _ = m.receive(Segment(seq: 5001, ack: 1011, ctl: .ack, window: 8000))
        #expect(!m.timers.isRunning(.retransmission) && m.timers.backoffs == 1, "\(profile)")
        _ = m.call(.send(10))
        #expect(m.expiry(.retransmission)?.lower == 2 * floor, "\(profile)")
        // That text, sent once, acknowledged: a sample, and the RTO is the floor again.
        _ = m.call(.send(10))
        _ = m.receive(Segment(seq: 5001, ack: 1021, ctl: .ack, window: 8000))
        #expect(m.timers.backoffs == 0 && m.expiry(.retransmission)?.lower == floor, "\(profile)")
    }

    static let user = UInt8(1) << TimerName.user.rawValue

    @Test("R2: the user timer starts at a data segment's first retransmission, later ones leave it, an ACK of new data stops it; its window is the profile's (rfc9293 at least 100 s) or the application's, lowered by the RTO before it", arguments: ["rfc9293", "linux"])
    func r2Data(profile: String) throws {
        for app in [nil, 3.0] as [Double?] {
            var spec = try spec(profile)
            if let app { spec = spec.replacingTimings(Timing.applicationR2(app, setting: "TCP_USER_TIMEOUT=3000")) }
            var m = TCPModel(spec: spec)
            _ = m.call(.openActive, iss: 1000)
            _ = m.receive(Segment(seq: 5000, ack: 1001, ctl: [.syn, .ack], window: 8000))
            #expect(!m.timers.isRunning(.user), "\(profile): the SYN,ACK acknowledged the SYN")
            let send = m.call(.send(10))
            #expect(send.timersStarted & Self.user == 0, "\(profile): nothing retransmitted yet")
            let rto = try #require(m.expiry(.retransmission)?.upper)
            let first = m.timeout(.retransmission)
            #expect(first.timersStarted & Self.user != 0 && m.timers.r2Lead == rto, "\(profile)")
            let w = try #require(m.expiry(.user))
            #expect(w.timings == [.r2], "\(profile)")
            if let app {
                #expect(w.lower == app - rto && w.upper == app, "\(profile): \(w)")
            } else if profile == "rfc9293" {
                #expect(w.lower == 100 - rto && w.upper == nil, "\(profile): SHLD-11, open above: \(w)")
            }
            let second = m.timeout(.retransmission)
            #expect(second.timersStarted & Self.user == 0 && m.timers.isRunning(.user), "\(profile): R2 counts from the first retransmission")
            let ack = m.receive(Segment(seq: 5001, ack: 1006, ctl: .ack, window: 8000))
            #expect(ack.timersStopped & Self.user != 0 && !m.timers.isRunning(.user), "\(profile): the front of the queue moved")
            #expect(m.timers.isRunning(.retransmission), "\(profile): five octets still outstanding")
        }
    }

    @Test("R2 for a SYN: an active open's user timer runs from the SYN (r2.syn, rfc9293 at least 3 min); the SYN,ACK stops it; a passive open's SYN,ACK starts none", arguments: ["rfc9293", "linux"])
    func r2Syn(profile: String) throws {
        var m = TCPModel(spec: try spec(profile))
        let open = m.call(.openActive, iss: 1000)
        #expect(open.timersStarted & Self.user != 0)
        #expect(m.expiry(.user)?.timings == [.r2Syn])
        if profile == "rfc9293" { #expect(m.expiry(.user)?.lower == 180, "MUST-23") }
        let again = m.timeout(.retransmission)
        #expect(again.timersStarted & Self.user == 0 && m.timers.isRunning(.user))
        // Simultaneous open: the SYN,ACK it sends is still a SYN, timed by the same R2.
        _ = m.receive(Segment(seq: 5000, ack: 0, ctl: .syn, window: 8000))
        #expect(m.stateName == "SYN-RECEIVED" && m.timers.isRunning(.user) && m.expiry(.user)?.timings == [.r2Syn])
        _ = m.receive(Segment(seq: 5001, ack: 1001, ctl: .ack, window: 8000))
        #expect(m.stateName == "ESTABLISHED" && !m.timers.isRunning(.user))

        var p = TCPModel(spec: try spec(profile))
        _ = p.call(.openPassive)
        _ = p.receive(Segment(seq: 5000, ack: 0, ctl: .syn, window: 8000), iss: 1000)
        #expect(p.stateName == "SYN-RECEIVED")
        let synack = p.timeout(.retransmission)
        #expect(synack.outputs.map(\.segment.ctl) == [[.syn, .ack]] && !p.timers.isRunning(.user), "\(profile): no application R2 reaches a request")
    }

    @Test("R2's expiry closes the connection silently (USER-TIMEOUT, RFC 9293 §3.10.8); due with a retransmission, it goes first (Linux clamps the RTO to it)")
    func r2Expiry() throws {
        var m = TCPModel(spec: try spec("linux").replacingTimings(Timing.applicationR2(3, setting: "TCP_USER_TIMEOUT=3000")))
        _ = m.call(.openActive, iss: 1000)
        _ = m.timeout(.retransmission)
        _ = m.timeout(.retransmission)
        // The user timer started with the SYN at 0, the RTO was restarted at 2: both due at 3.
        let starts: [TimerName: Double] = [.user: 0, .retransmission: 2]
        #expect(m.nextExpiry(since: { starts[$0]! })?.timer == .user)
        #expect(m.nextExpiry(since: { [.user: 0.5, .retransmission: 2][$0]! })?.timer == .retransmission)
        let end = m.timeout(.user)
        #expect(end.outputs.isEmpty && m.stateName == "CLOSED" && m.timers.running == 0)
    }
}
