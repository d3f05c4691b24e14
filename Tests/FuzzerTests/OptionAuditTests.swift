import Core
@testable import Fuzzer
import Oracle
import Testing
import Wire

/// The live oracle's audit of the target's options (the offline checker's `OptionRule.audit`, beside the spec): each
/// fault a typed mismatch with its rule, one finding per rule, its requirement in the verdict.
@Suite("Oracle: the target's options")
struct OptionAuditTests {
    /// A frame as the target would send it, decoded back (checksum verified as on the live path).
    static func sent(_ flags: ControlBits, options: [TCPOption], text: Int = 0) throws -> TCPHeader {
        var tcp = TCPHeader(sourcePort: 80, destinationPort: 40000, seq: 5000, ack: 1001, flags: flags, window: 64000, options: options)
        tcp.payload = [UInt8](repeating: 0x61, count: text)
        let p = Packet(ethernet: EthernetHeader(destination: MACAddress([2, 0, 0, 0, 0, 1]), source: MACAddress([2, 0, 0, 0, 0, 2])),
                       ip: .v4(IPv4Header(source: IPAddress("192.0.2.2")!, destination: IPAddress("192.0.2.1")!)), tcp: tcp)
        return try Packet.decode(p.encode(), link: .ethernet).tcp
    }

    static func rules(_ ms: [Mismatch]) -> [OptionRule] { ms.compactMap { if case .option(let o) = $0 { o.rule } else { nil } } }

    @Test("what Linux sends is clean: its SYN,ACK to a SYN with MSS only, full segments with timestamps")
    func clean() throws {
        #expect(Session.optionFaults(try Self.sent([.syn, .ack], options: [.maxSegmentSize(1460), .noOperation, .noOperation, .sackPermitted])).isEmpty)
        #expect(Session.optionFaults(try Self.sent([.psh, .ack], options: [], text: 1460)).isEmpty)
        #expect(Session.optionFaults(try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 1, echo: 2)], text: 1448)).isEmpty)
    }

    @Test("each fault is its rule: text past the tester's MSS less the options (MUST-16), MSS without SYN (MUST-65), a zero length (MUST-68), non-zero padding (MUST-69)")
    func faults() throws {
        #expect(Self.rules(Session.optionFaults(try Self.sent([.psh, .ack], options: [], text: 1461))) == [.effectiveMSS])
        #expect(Self.rules(Session.optionFaults(try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 1, echo: 2)], text: 1449))) == [.effectiveMSS])
        #expect(Self.rules(Session.optionFaults(try Self.sent(.ack, options: [.maxSegmentSize(1460)]))) == [.mssOnlyOnSYN])
        #expect(Self.rules(Session.optionFaults(try Self.sent(.ack, options: [.raw([30, 0, 0, 0])]))) == [.optionLength])
        #expect(Self.rules(Session.optionFaults(try Self.sent(.ack, options: [.endOfList, .raw([0, 9, 0])]))) == [.optionPadding])
        // Timestamps on a SYN,ACK are judged offline only (Linux's simultaneous open: see Session.optionFaults).
        #expect(Session.optionFaults(try Self.sent([.syn, .ack], options: [.maxSegmentSize(1460), .timestamps(value: 9, echo: 0)])).isEmpty)
        let m = Session.optionFaults(try Self.sent([.psh, .ack], options: [], text: 1500))
        #expect(m.first?.description == "option: the target sends 1500 octets of text in one segment, 40 beyond the effective send MSS; expected at most 1460 octets of text: the MSS 1460 the tester offered, less 0 octets of options (MUST-16, RFC 9293 §3.7.1)")
    }

    @Test("a step whose only mismatches are in the options is one finding per rule, in any state, with its requirement")
    func signature() throws {
        let m = Session.optionFaults(try Self.sent([.psh, .ack], options: [], text: 1500))
        let a = Signature(state: .established, decidedBy: "x", expected: [], expectedState: .established, observed: [], observedState: .established, mismatches: m)
        let b = Signature(state: .closeWait, decidedBy: "y", expected: [], expectedState: .closeWait, observed: [], observedState: .closeWait, mismatches: m)
        #expect(a == b && a == .option(.effectiveMSS))
        #expect(a.description == "any state | option effective-mss | violates MUST-16 (RFC 9293 §3.7.1)")
        #expect(a.requirements == [RequirementID(.must, 16)] && a.verdictClass == .violates)
        // Beside a divergence of the step's segments, the step's own signature stands (the option fault is in its log).
        let both = m + [.state(expected: .established, observed: .closed)]
        let c = Signature(state: .established, decidedBy: "x", expected: [], expectedState: .established, observed: [], observedState: .closed, mismatches: both)
        if case .step = c {} else { Issue.record("\(c)") }
    }
}
