import Core
import Model
import Spec
import Testing

/// RFC 793 §3.4-3.5 Figures 7-14 (RFC 9293 Figures 6-13): every segment and every state of each figure,
/// replayed through two models joined back to back. Line numbers are the figures'.
@Suite("RFC 793 figures, back to back")
struct GoldenFigureTests {
    static let profiles = ["rfc793", "rfc9293", "linux"]

    @Test("Figure 7: basic three-way handshake", arguments: profiles)
    func figure7(profile: String) throws {
        let spec = try spec(profile)
        var a = Endpoint(spec, "A"), b = Endpoint(spec, "B")
        // 1. CLOSED / LISTEN
        _ = b.call(.openPassive)
        #expect(a.state == "CLOSED" && b.state == "LISTEN")
        // 2. SYN-SENT --> <SEQ=100><CTL=SYN> --> SYN-RECEIVED
        let syn = a.call(.openActive, iss: 100)
        #expect(figures(syn) == ["<SEQ=100><CTL=SYN>"])
        #expect(a.state == "SYN-SENT")
        let synack = b.receive(syn[0], iss: 300)
        #expect(b.state == "SYN-RECEIVED")
        // 3. ESTABLISHED <-- <SEQ=300><ACK=101><CTL=SYN,ACK> <-- SYN-RECEIVED
        #expect(figures(synack) == ["<SEQ=300><ACK=101><CTL=SYN,ACK>"])
        let ack = a.receive(synack[0])
        #expect(a.state == "ESTABLISHED")
        // 4. ESTABLISHED --> <SEQ=101><ACK=301><CTL=ACK> --> ESTABLISHED
        #expect(figures(ack) == ["<SEQ=101><ACK=301><CTL=ACK>"])
        #expect(b.receive(ack[0]).isEmpty)
        #expect(b.state == "ESTABLISHED")
        // 5. ESTABLISHED --> <SEQ=101><ACK=301><CTL=ACK><DATA> --> ESTABLISHED
        let data = a.call(.send(10))
        #expect(figures(data) == ["<SEQ=101><ACK=301><CTL=ACK><DATA=10>"])
        let dataAck = b.receive(data[0])
        #expect(a.state == "ESTABLISHED" && b.state == "ESTABLISHED")
        #expect(figures(dataAck) == ["<SEQ=301><ACK=111><CTL=ACK>"])
    }

    @Test("Figure 8: simultaneous connection synchronization", arguments: profiles)
    func figure8(profile: String) throws {
        let spec = try spec(profile)
        var a = Endpoint(spec, "A"), b = Endpoint(spec, "B")
        // 2. SYN-SENT --> <SEQ=100><CTL=SYN> ...
        let synA = a.call(.openActive, iss: 100)
        #expect(figures(synA) == ["<SEQ=100><CTL=SYN>"])
        #expect(a.state == "SYN-SENT" && b.state == "CLOSED")
        // 3. SYN-RECEIVED <-- <SEQ=300><CTL=SYN> <-- SYN-SENT
        let synB = b.call(.openActive, iss: 300)
        #expect(figures(synB) == ["<SEQ=300><CTL=SYN>"])
        #expect(b.state == "SYN-SENT")
        let synackA = a.receive(synB[0])
        #expect(a.state == "SYN-RECEIVED")
        // 4. ... <SEQ=100><CTL=SYN> --> SYN-RECEIVED
        let synackB = b.receive(synA[0])
        #expect(a.state == "SYN-RECEIVED" && b.state == "SYN-RECEIVED")
        // 5. SYN-RECEIVED --> <SEQ=100><ACK=301><CTL=SYN,ACK> ...
        #expect(figures(synackA) == ["<SEQ=100><ACK=301><CTL=SYN,ACK>"])
        // 6. ESTABLISHED <-- <SEQ=300><ACK=101><CTL=SYN,ACK> <-- SYN-RECEIVED
        #expect(figures(synackB) == ["<SEQ=300><ACK=101><CTL=SYN,ACK>"])
        let ackA = a.receive(synackB[0])
        #expect(a.state == "ESTABLISHED")
        // 7. ... <SEQ=101><ACK=301><CTL=ACK> --> ESTABLISHED
        #expect(figures(ackA) == ["<SEQ=101><ACK=301><CTL=ACK>"])
        #expect(b.receive(ackA[0]).isEmpty)
        #expect(b.state == "ESTABLISHED")
        // Line 5's SYN,ACK, still in flight, finally reaches B: a duplicate, acknowledged, no state change.
        #expect(figures(b.receive(synackA[0])) == ["<SEQ=301><ACK=101><CTL=ACK>"])
        #expect(b.state == "ESTABLISHED")
    }

    /// Figure 8 in the figure's own arrival order: line 5's SYN,ACK reaches B while B is still SYN-RECEIVED, before
    /// A's acknowledgment of line 6, and B enters ESTABLISHED on it (line 7). The spec reads it as §3.10.7.4 says:
    /// the SYN (SEQ 100, before RCV.NXT 101) is trimmed off, what remains begins at RCV.NXT, its ACK field is
    /// processed, and the trimmed part is acknowledged (`synrcvd.seq.dupsyn`, `syn.trimmed`). Every line's states
    /// asserted; the other order is `figure8`.
    @Test("Figure 8, the figure's arrival order: the crossing SYN,ACK before A's ACK", arguments: profiles)
    func figure8FigureOrder(profile: String) throws {
        let spec = try spec(profile)
        var a = Endpoint(spec, "A"), b = Endpoint(spec, "B")
        // 1. CLOSED / CLOSED
        #expect(a.state == "CLOSED" && b.state == "CLOSED")
        // 2. SYN-SENT --> <SEQ=100><CTL=SYN> ...
        let synA = a.call(.openActive, iss: 100)
        #expect(a.state == "SYN-SENT" && b.state == "CLOSED")
        // 3. SYN-RECEIVED <-- <SEQ=300><CTL=SYN> <-- SYN-SENT
        let synB = b.call(.openActive, iss: 300)
        #expect(b.state == "SYN-SENT")
        let synackA = a.receive(synB[0])
        #expect(a.state == "SYN-RECEIVED" && b.state == "SYN-SENT")
        // 4. ... <SEQ=100><CTL=SYN> --> SYN-RECEIVED
        let synackB = b.receive(synA[0])
        #expect(a.state == "SYN-RECEIVED" && b.state == "SYN-RECEIVED")
        // 5. SYN-RECEIVED --> <SEQ=100><ACK=301><CTL=SYN,ACK> ...
        #expect(figures(synackA) == ["<SEQ=100><ACK=301><CTL=SYN,ACK>"])
        // 6. ESTABLISHED <-- <SEQ=300><ACK=101><CTL=SYN,ACK> <-- SYN-RECEIVED
        #expect(figures(synackB) == ["<SEQ=300><ACK=101><CTL=SYN,ACK>"])
        let ackA = a.receive(synackB[0])
        #expect(a.state == "ESTABLISHED" && b.state == "SYN-RECEIVED")
        #expect(figures(ackA) == ["<SEQ=101><ACK=301><CTL=ACK>"])
        // 7. ... <SEQ=100><ACK=301><CTL=SYN,ACK> --> ESTABLISHED (the SYN trimmed and acknowledged)
        let dupAck = b.receive(synackA[0])
        #expect(figures(dupAck) == ["<SEQ=301><ACK=101><CTL=ACK>"])
        #expect(a.state == "ESTABLISHED" && b.state == "ESTABLISHED")
        // A's ACK of line 6 arrives after: nothing new for B; B's ACK tells A nothing new either.
        #expect(b.receive(ackA[0]).isEmpty)
        #expect(a.receive(dupAck[0]).isEmpty)
        #expect(a.state == "ESTABLISHED" && b.state == "ESTABLISHED")
    }

    @Test("Figure 9: recovery from old duplicate SYN", arguments: profiles)
    func figure9(profile: String) throws {
        let spec = try spec(profile)
        var a = Endpoint(spec, "A"), b = Endpoint(spec, "B")
        _ = b.call(.openPassive)
        // 1. CLOSED LISTEN
        #expect(a.state == "CLOSED" && b.state == "LISTEN")
        // 2. SYN-SENT --> <SEQ=100><CTL=SYN> ...
        let syn = a.call(.openActive, iss: 100)
        #expect(figures(syn) == ["<SEQ=100><CTL=SYN>"])
        #expect(a.state == "SYN-SENT" && b.state == "LISTEN")
        // 3. (duplicate) ... <SEQ=90><CTL=SYN> --> SYN-RECEIVED
        let synack1 = b.receive(Segment(seq: 90, ctl: .syn), iss: 300)
        #expect(a.state == "SYN-SENT" && b.state == "SYN-RECEIVED")
        // 4. SYN-SENT <-- <SEQ=300><ACK=91><CTL=SYN,ACK> <-- SYN-RECEIVED
        #expect(figures(synack1) == ["<SEQ=300><ACK=91><CTL=SYN,ACK>"])
        let rst = a.receive(synack1[0])
        #expect(a.state == "SYN-SENT")
        // 5. SYN-SENT --> <SEQ=91><CTL=RST> --> LISTEN
        #expect(figures(rst) == ["<SEQ=91><CTL=RST>"])
        #expect(b.receive(rst[0]).isEmpty)
        #expect(a.state == "SYN-SENT" && b.state == "LISTEN")
        // 6. ... <SEQ=100><CTL=SYN> --> SYN-RECEIVED
        let synack2 = b.receive(syn[0], iss: 400)
        #expect(a.state == "SYN-SENT" && b.state == "SYN-RECEIVED")
        // 7. SYN-SENT <-- <SEQ=400><ACK=101><CTL=SYN,ACK> <-- SYN-RECEIVED
        #expect(figures(synack2) == ["<SEQ=400><ACK=101><CTL=SYN,ACK>"])
        let ack = a.receive(synack2[0])
        // 8. ESTABLISHED --> <SEQ=101><ACK=401><CTL=ACK> --> ESTABLISHED
        #expect(a.state == "ESTABLISHED" && b.state == "SYN-RECEIVED")
        #expect(figures(ack) == ["<SEQ=101><ACK=401><CTL=ACK>"])
        #expect(b.receive(ack[0]).isEmpty)
        #expect(b.state == "ESTABLISHED")
    }

    /// B after "(send 300, receive 100)": ESTABLISHED with SND.NXT = 300 and RCV.NXT = 100.
    static func establishedB(_ spec: CompiledSpec, receiveWindow: UInt32) -> Endpoint {
        var b = Endpoint(spec, "B", receiveWindow: receiveWindow)
        _ = b.call(.openPassive)
        _ = b.receive(Segment(seq: 99, ctl: .syn), iss: 299)
        _ = b.receive(Segment(seq: 100, ack: 300, ctl: .ack))
        return b
    }

    @Test("Figure 10: half-open connection discovery", arguments: profiles)
    func figure10(profile: String) throws {
        let spec = try spec(profile)
        // B's window is 100 octets, so A's SYN at 400 lies outside it as the figure assumes.
        var b = Self.establishedB(spec, receiveWindow: 100)
        #expect(b.state == "ESTABLISHED" && b.m[.sndNxt] == 300 && b.m[.rcvNxt] == 100)
        // 1-2. (CRASH) CLOSED
        var a = Endpoint(spec, "A")
        // 3. SYN-SENT --> <SEQ=400><CTL=SYN> --> (??)
        #expect(a.state == "CLOSED")
        let syn = a.call(.openActive, iss: 400)
        #expect(figures(syn) == ["<SEQ=400><CTL=SYN>"])
        #expect(a.state == "SYN-SENT" && b.state == "ESTABLISHED")
        let ack = b.receive(syn[0])
        // 4. (!!) <-- <SEQ=300><ACK=100><CTL=ACK> <-- ESTABLISHED
        #expect(figures(ack) == ["<SEQ=300><ACK=100><CTL=ACK>"])
        #expect(a.state == "SYN-SENT" && b.state == "ESTABLISHED")
        // 5. SYN-SENT --> <SEQ=100><CTL=RST> --> (Abort!!)
        let rst = a.receive(ack[0])
        #expect(figures(rst) == ["<SEQ=100><CTL=RST>"])
        #expect(a.state == "SYN-SENT" && b.state == "ESTABLISHED")
        var tb = b.m
        let abort = tb.receive(rst[0])
        // 6. SYN-SENT CLOSED
        #expect(tb.stateName == "CLOSED" && a.state == "SYN-SENT")
        #expect(abort.signals.map { spec.strings[$0] } == ["connection reset"])
        // 7. SYN-SENT --> <SEQ=400><CTL=SYN> -->
        #expect(figures(a.timeout(.retransmission)) == ["<SEQ=400><CTL=SYN>"])
        #expect(a.state == "SYN-SENT")
    }

    @Test("Figure 11: active side causes half-open connection discovery", arguments: profiles)
    func figure11(profile: String) throws {
        let spec = try spec(profile)
        var b = Self.establishedB(spec, receiveWindow: 65535)
        var a = Endpoint(spec, "A")  // crashed: no TCB
        // 2. (??) <-- <SEQ=300><ACK=100><DATA=10><CTL=ACK> <-- ESTABLISHED
        #expect(a.state == "CLOSED" && b.state == "ESTABLISHED")
        let data = b.call(.send(10))
        #expect(figures(data) == ["<SEQ=300><ACK=100><CTL=ACK><DATA=10>"])
        #expect(a.state == "CLOSED" && b.state == "ESTABLISHED")
        // 3. --> <SEQ=100><CTL=RST> --> (ABORT!!)
        let rst = a.receive(data[0])
        #expect(figures(rst) == ["<SEQ=100><CTL=RST>"])
        #expect(a.state == "CLOSED" && b.state == "ESTABLISHED")
        #expect(b.receive(rst[0]).isEmpty)
        #expect(a.state == "CLOSED" && b.state == "CLOSED")
    }

    @Test("Figure 12: old duplicate SYN initiates a reset on two passive sockets", arguments: profiles)
    func figure12(profile: String) throws {
        let spec = try spec(profile)
        var a = Endpoint(spec, "A"), b = Endpoint(spec, "B")
        _ = a.call(.openPassive)
        _ = b.call(.openPassive)
        // 1. LISTEN LISTEN
        #expect(a.state == "LISTEN" && b.state == "LISTEN")
        // 2. ... <SEQ=Z><CTL=SYN> --> SYN-RECEIVED      (Z = 200, X = 500)
        let synack = b.receive(Segment(seq: 200, ctl: .syn), iss: 500)
        #expect(a.state == "LISTEN" && b.state == "SYN-RECEIVED")
        // 3. (??) <-- <SEQ=X><ACK=Z+1><CTL=SYN,ACK> <-- SYN-RECEIVED
        #expect(figures(synack) == ["<SEQ=500><ACK=201><CTL=SYN,ACK>"])
        let rst = a.receive(synack[0])
        #expect(a.state == "LISTEN" && b.state == "SYN-RECEIVED")
        // 4. --> <SEQ=Z+1><CTL=RST> --> (return to LISTEN!)
        #expect(figures(rst) == ["<SEQ=201><CTL=RST>"])
        #expect(b.receive(rst[0]).isEmpty)
        // 5. LISTEN LISTEN
        #expect(a.state == "LISTEN" && b.state == "LISTEN")
    }

    /// A and B ESTABLISHED with A sending from 100 and receiving from 300, as Figures 13 and 14 begin.
    static func established(_ spec: CompiledSpec) -> (Endpoint, Endpoint) {
        var a = Endpoint(spec, "A"), b = Endpoint(spec, "B")
        _ = b.call(.openPassive)
        let syn = a.call(.openActive, iss: 99)
        let synack = b.receive(syn[0], iss: 299)
        let ack = a.receive(synack[0])
        _ = b.receive(ack[0])
        return (a, b)
    }

    @Test("Figure 13: normal close sequence", arguments: profiles)
    func figure13(profile: String) throws {
        let spec = try spec(profile)
        var (a, b) = Self.established(spec)
        #expect(a.state == "ESTABLISHED" && b.state == "ESTABLISHED")
        // 2. (Close) FIN-WAIT-1 --> <SEQ=100><ACK=300><CTL=FIN,ACK> --> CLOSE-WAIT
        let fin = a.call(.close)
        #expect(a.state == "FIN-WAIT-1" && b.state == "ESTABLISHED")
        #expect(figures(fin) == ["<SEQ=100><ACK=300><CTL=FIN,ACK>"])
        let ack = b.receive(fin[0])
        #expect(a.state == "FIN-WAIT-1" && b.state == "CLOSE-WAIT")
        // 3. FIN-WAIT-2 <-- <SEQ=300><ACK=101><CTL=ACK> <-- CLOSE-WAIT
        #expect(figures(ack) == ["<SEQ=300><ACK=101><CTL=ACK>"])
        #expect(a.receive(ack[0]).isEmpty)
        #expect(a.state == "FIN-WAIT-2" && b.state == "CLOSE-WAIT")
        // 4. (Close) TIME-WAIT <-- <SEQ=300><ACK=101><CTL=FIN,ACK> <-- LAST-ACK
        let finB = b.call(.close)
        #expect(a.state == "FIN-WAIT-2" && b.state == "LAST-ACK")
        #expect(figures(finB) == ["<SEQ=300><ACK=101><CTL=FIN,ACK>"])
        let lastAck = a.receive(finB[0])
        #expect(a.state == "TIME-WAIT" && b.state == "LAST-ACK")
        // 5. TIME-WAIT --> <SEQ=101><ACK=301><CTL=ACK> --> CLOSED
        #expect(figures(lastAck) == ["<SEQ=101><ACK=301><CTL=ACK>"])
        #expect(b.receive(lastAck[0]).isEmpty)
        #expect(a.state == "TIME-WAIT" && b.state == "CLOSED")
        // 6. (2 MSL) CLOSED
        #expect(a.timeout(.timeWait).isEmpty)
        #expect(a.state == "CLOSED" && b.state == "CLOSED")
    }

    @Test("Figure 14: simultaneous close sequence", arguments: profiles)
    func figure14(profile: String) throws {
        let spec = try spec(profile)
        var (a, b) = Self.established(spec)
        // 2. (Close) FIN-WAIT-1 --> <SEQ=100><ACK=300><CTL=FIN,ACK> ... FIN-WAIT-1 (Close)
        let finA = a.call(.close)
        let finB = b.call(.close)
        #expect(a.state == "FIN-WAIT-1" && b.state == "FIN-WAIT-1")
        #expect(figures(finA) == ["<SEQ=100><ACK=300><CTL=FIN,ACK>"])
        #expect(figures(finB) == ["<SEQ=300><ACK=100><CTL=FIN,ACK>"])
        // 3. CLOSING --> <SEQ=101><ACK=301><CTL=ACK> ... CLOSING
        let ackA = a.receive(finB[0])
        #expect(a.state == "CLOSING" && b.state == "FIN-WAIT-1")
        let ackB = b.receive(finA[0])
        #expect(a.state == "CLOSING" && b.state == "CLOSING")
        #expect(figures(ackA) == ["<SEQ=101><ACK=301><CTL=ACK>"])
        #expect(figures(ackB) == ["<SEQ=301><ACK=101><CTL=ACK>"])
        // 4. TIME-WAIT TIME-WAIT, (2 MSL) CLOSED CLOSED
        #expect(a.receive(ackB[0]).isEmpty)
        #expect(a.state == "TIME-WAIT" && b.state == "CLOSING")
        #expect(b.receive(ackA[0]).isEmpty)
        #expect(a.state == "TIME-WAIT" && b.state == "TIME-WAIT")
        _ = a.timeout(.timeWait)
        #expect(a.state == "CLOSED" && b.state == "TIME-WAIT")
        _ = b.timeout(.timeWait)
        #expect(a.state == "CLOSED" && b.state == "CLOSED")
    }
}
