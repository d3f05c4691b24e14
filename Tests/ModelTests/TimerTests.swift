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
}
