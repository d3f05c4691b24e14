import Core
@testable import Fuzzer
import Model
import Oracle
import Report
import Testing
import Wire

/// The live oracle's view of options: what the tester offers and sends (`OptionAgreement.prepare`), what both SYNs
/// agree, the target's windows scaled, and the target's options judged (the offline checker's `OptionRule.audit`,
/// plus what needs the agreement) — each fault a typed mismatch with its rule, one finding per rule.
@Suite("Oracle: options agreed and the target's options judged")
struct OptionAuditTests {
    /// A segment as the target would send it, decoded back (checksum verified as on the live path).
    static func sent(_ flags: ControlBits, options: [TCPOption], text: Int = 0, seq: UInt32 = 5000, ack: UInt32 = 1001, window: UInt16 = 64000) throws -> TimedSegment {
        var tcp = TCPHeader(sourcePort: 80, destinationPort: 40000, seq: seq, ack: ack, flags: flags, window: window, options: options)
        tcp.payload = [UInt8](repeating: 0x61, count: text)
        let p = Packet(ethernet: EthernetHeader(destination: MACAddress([2, 0, 0, 0, 0, 1]), source: MACAddress([2, 0, 0, 0, 0, 2])),
                       ip: .v4(IPv4Header(source: IPAddress("192.0.2.2")!, destination: IPAddress("192.0.2.1")!)), tcp: tcp)
        let d = try Packet.decode(p.encode(), link: .ethernet).tcp
        return TimedSegment(time: 0, segment: d.segment, options: TCPOptionScan.scan(d), whole: d.checksumValid == true)
    }

    static func rules(_ ms: [Mismatch]) -> [OptionRule] { ms.compactMap { if case .option(let o) = $0 { o.rule } else { nil } } }

    /// Judges `t` on `a` and returns the rules it broke.
    static func judge(_ a: inout OptionAgreement, _ t: TimedSegment) -> [OptionRule] {
        var t = t
        return rules(a.observe(&t))
    }

    static let linuxSYNACK: [TCPOption] = [.maxSegmentSize(1460), .sackPermitted, .timestamps(value: 7000, echo: 1), .noOperation, .windowScale(7)]

    @Test("what Linux sends to an MSS-only offer is clean: its SYN,ACK, full segments, timestamps it was not asked for ignored")
    func clean() throws {
        var a = OptionAgreement(offer: .mssOnly)
        #expect(Self.judge(&a, try Self.sent([.syn, .ack], options: [.maxSegmentSize(1460), .noOperation, .noOperation, .sackPermitted])).isEmpty)
        #expect(Self.judge(&a, try Self.sent([.psh, .ack], options: [], text: 1460)).isEmpty)
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 1, echo: 2)], text: 1448)).isEmpty)
        #expect(!a.windowScaleAgreed && !a.timestampsAgreed && a.targetShift == 0)
    }

    @Test("each fault is its rule: text past the tester's MSS less the options (MUST-16), MSS without SYN (MUST-65), a zero length (MUST-68), non-zero padding (MUST-69)")
    func faults() throws {
        var a = OptionAgreement(offer: .mssOnly)
        #expect(Self.judge(&a, try Self.sent([.psh, .ack], options: [], text: 1461)) == [.effectiveMSS])
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 1, echo: 2)], text: 1449)) == [.effectiveMSS])
        // Exactly k ≥ 2 full segments is a TSO/GSO or GRO super-segment (its checksum recomputed): not judged.
        #expect(Self.judge(&a, try Self.sent([.psh, .ack], options: [], text: 2920)).isEmpty)
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 1, echo: 2)], text: 5 * 1448)).isEmpty)
        #expect(Self.judge(&a, try Self.sent([.psh, .ack], options: [], text: 2921)) == [.effectiveMSS])
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.maxSegmentSize(1460)])) == [.mssOnlyOnSYN])
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.raw([30, 0, 0, 0])])) == [.optionLength])
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.endOfList, .raw([0, 9, 0])])) == [.optionPadding])
        // Timestamps on a SYN,ACK the tester's SYN did not offer are judged offline only (Linux's simultaneous open).
        #expect(Self.judge(&a, try Self.sent([.syn, .ack], options: [.maxSegmentSize(1460), .timestamps(value: 9, echo: 0)])).isEmpty)
        var t = try Self.sent([.psh, .ack], options: [], text: 1500)
        let m = a.observe(&t)
        #expect(m.first?.description == "option: the target sends 1500 octets of text in one segment, 40 beyond the effective send MSS; expected at most 1460 octets of text: the MSS 1460 the tester offered, less 0 octets of options (MUST-16, RFC 9293 §3.7.1)")
        // No MSS offered: the default, 536 over IPv4 and 1220 over IPv6 (MUST-15).
        var none = OptionAgreement(offer: TesterOptions(mss: nil))
        #expect(Self.judge(&none, try Self.sent([.psh, .ack], options: [], text: 537)) == [.effectiveMSS])
        #expect(Self.judge(&none, try Self.sent([.psh, .ack], options: [], text: 536)).isEmpty)
        #expect(OptionAgreement(offer: TesterOptions(mss: nil), ipv6: true).sendMSS == 1220)
    }

    @Test("the tester's SYN carries the offer; once both SYNs agree, every segment carries Timestamps echoing TS.Recent and windows are scaled both ways")
    func agreement() throws {
        let offer = TesterOptions(mss: 1460, windowScale: 14, sackPermitted: true, timestamps: true)
        let back = try TesterOptions(parsing: offer.description)
        #expect(offer.description == "mss 1460,sackOK,TS,wscale 14" && back == offer)
        var a = OptionAgreement(offer: offer)
        let syn = a.prepare(Segment(seq: 1000, ack: 0, ctl: .syn, window: 65535, dataLength: 0))
        #expect(syn == [.maxSegmentSize(1460), .sackPermitted, .timestamps(value: 1, echo: 0), .noOperation, .windowScale(14)])
        // Before the target's SYN nothing is agreed: a RST goes without options.
        #expect(a.prepare(Segment(seq: 1001, ack: 0, ctl: .rst, window: 0, dataLength: 0)).isEmpty)
        #expect(Self.judge(&a, try Self.sent([.syn, .ack], options: Self.linuxSYNACK, seq: 5000, ack: 1001, window: 65160)).isEmpty)
        #expect(a.windowScaleAgreed && a.targetShift == 7 && a.testerShift == 14 && a.timestampsAgreed)
        // The tester's windows: a SYN's never scaled, any other's in units of 2^14.
        #expect(a.testerWindow(2, syn: false) == 32768 && a.testerWindow(2, syn: true) == 2)
        // The handshake's ACK echoes the SYN,ACK's TSval.
        let ack = a.prepare(Segment(seq: 1001, ack: 5001, ctl: .ack, window: 4, dataLength: 0))
        #expect(ack == [.noOperation, .noOperation, .timestamps(value: 2, echo: 7000)])
        // The target's window is scaled by its own shift.
        var t = try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 7001, echo: 2)], seq: 5001, ack: 1001, window: 500)
        #expect(a.observe(&t).isEmpty && t.segment.window == 500 << 7)
        // R3: a TSval from a segment at or below Last.ACK.sent moves TS.Recent; one beyond it does not.
        var beyond = try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 7005, echo: 2)], seq: 6000, ack: 1001)
        _ = a.observe(&beyond)
        #expect(a.tsRecent == 7001)
        // Once agreed: a segment without Timestamps (RST exempt), an echo of a TSval never sent.
        #expect(Self.judge(&a, try Self.sent(.ack, options: [], seq: 5001)) == [.timestampsEverySegment])
        #expect(Self.judge(&a, try Self.sent(.rst, options: [], seq: 5001)).isEmpty)
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 7002, echo: 99)], seq: 5001)) == [.timestampEcho])
    }

    @Test("a wrapping clock: TSvals go through 2^32, echoes of any sent are echoes (modulo 2^32), others are not; the offer reads back")
    func wrappingClock() throws {
        let offer = TesterOptions(mss: 1460, timestamps: true, timestampStart: TesterOptions.wrappingTimestampStart)
        let back = try TesterOptions(parsing: offer.description), ts = try TesterOptions(parsing: "TS")
        #expect(offer.description == "mss 1460,TS 4294967293" && back == offer)
        #expect(ts.timestampStart == 1)
        #expect(throws: TesterOptionsError.self) { try TesterOptions(parsing: "mss 1460,TS x") }
        var a = OptionAgreement(offer: offer)
        #expect(a.oldTSval == 4293918717 && TCPModel.seqLess(a.oldTSval, a.firstTSval))
        _ = a.prepare(Segment(seq: 1000, ctl: .syn, window: 65535))
        // Linux's SYN,ACK echoing 1 would echo a TSval never sent: this SYN carried 4294967293.
        #expect(Self.judge(&a, try Self.sent([.syn, .ack], options: Self.linuxSYNACK, seq: 5000, ack: 1001, window: 65160)) == [.timestampEcho])
        #expect(Self.judge(&a, try Self.sent([.syn, .ack], options: [.maxSegmentSize(1460), .timestamps(value: 7000, echo: 4294967293)], seq: 5000, ack: 1001, window: 65160)).isEmpty)
        var vals: [UInt32] = []
        for _ in 0..<4 {
            if case .timestamps(let v, _)? = a.prepare(Segment(seq: 1001, ack: 5001, ctl: .ack, window: 65535)).last { vals.append(v) }
        }
        #expect(vals == [4294967294, 4294967295, 0, 1])
        for echo: UInt32 in [4294967293, 4294967295, 0, 1] {
            #expect(Self.judge(&a, try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 7001, echo: echo)], seq: 5001)).isEmpty, "\(echo)")
        }
        for echo: UInt32 in [2, 4294967292, 1 << 31] {
            #expect(Self.judge(&a, try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 7002, echo: echo)], seq: 5001)) == [.timestampEcho], "\(echo)")
        }
    }

    /// Each oddity leaves what a reader of RFC 9293 §3.1–§3.2 reads unchanged: the same Timestamps, the same offer
    /// on a SYN, no SYN-only option taken on a SYN; the bytes carry the oddity (an illegal length last, after the
    /// options that mean something, so a reader that stops there has read them).
    @Test("odd option lists: the same meaning to an RFC reader, the oddity in the bytes", arguments: OptionOddity.written)
    func oddities(_ oddity: OptionOddity) throws {
        let offer = TesterOptions(mss: 1460, windowScale: 7, sackPermitted: true, timestamps: true)
        var plain = OptionAgreement(offer: offer), odd = plain
        func header(_ o: [TCPOption], _ flags: ControlBits) -> TCPHeader { TCPHeader(sourcePort: 1, destinationPort: 2, seq: 0, ack: 0, flags: flags, window: 1, options: o) }
        for (flags, agree) in [(ControlBits.syn, true), (ControlBits.ack, false)] {
            let s = Segment(seq: 1000, ack: 5001, ctl: flags, window: 65535)
            var o = s
            o.oddity = oddity
            let p = plain.prepare(s), q = odd.prepare(o)
            let bp = header(p, flags).optionBytes, bq = header(q, flags).optionBytes
            #expect(bq.count <= 40)
            let sp = TCPOptionScan.scan(header(p, flags)), sq = TCPOptionScan.scan(header(q, flags))
            let echoed = sq.tsEcr == sp.tsEcr || oddity == .futureEcho && !flags.contains(.syn)
            #expect(sq.tsVal == sp.tsVal && echoed && sq.mss == sp.mss && sq.windowScale == sp.windowScale && sq.sackPermitted == sp.sackPermitted || oddity == .synOptionsOnNonSYN && !flags.contains(.syn),
                    "\(flags): \(p) / \(q)")
            #expect(odd.applies(oddity, syn: flags.contains(.syn)) == (bq != bp), "\(flags): \(bp) / \(bq)")
            switch oddity {
            case .unknownKind: #expect(bq.prefix(4) == [253, 4, 0x74, 0x63])
            case .synOptionsOnNonSYN: #expect(flags.contains(.syn) ? bq == bp : sq.synOnlyKinds == [.mss, .windowScale, .sackPermitted])
            case .unaligned: #expect(bq.first == 1 && bq[1] != 1 && !q.dropFirst().contains(.noOperation))
            case .afterEOL:
                // The reader stops at EOL; what follows is padding that is not zero (the tester's MUST-69, on purpose).
                if case .paddingNotZero? = sq.fault {} else { Issue.record("\(flags): \(String(describing: sq.fault))") }
            case .duplicated:
                // The first option that means something, twice: the MSS on the SYN, the Timestamps after it.
                #expect(bq.count == bp.count + (flags.contains(.syn) ? 4 : 12) && q.filter { $0 == q.first { $0 != .noOperation } }.count == 2, "\(q)")
            case .sackBeyondSent:
                // Two overlapping blocks 2^20 past the end of the target's SYN,ACK (5001).
                #expect(flags.contains(.syn) ? bq == bp : sq.sack.count == 2 && sq.sack[0] == (5001 + (1 << 20), 5001 + (1 << 20) + 1000) && sq.sack[1].left == sq.sack[0].left + 500,
                        "\(q)")
            case .futureEcho: #expect(flags.contains(.syn) ? bq == bp : sq.tsEcr == 7000 + (1 << 20), "\(q)")
            case .zeroLength: if case .lengthBelowTwo(253, 0, _)? = sq.fault {} else { Issue.record("\(flags): \(String(describing: sq.fault))") }
            case .lengthPastEnd: if case .overruns? = sq.fault {} else { Issue.record("\(flags): \(String(describing: sq.fault))") }
            case .none: break
            }
            if agree {
                #expect(Self.judge(&plain, try Self.sent([.syn, .ack], options: Self.linuxSYNACK, seq: 5000, ack: 1001, window: 65160)).isEmpty)
                #expect(Self.judge(&odd, try Self.sent([.syn, .ack], options: Self.linuxSYNACK, seq: 5000, ack: 1001, window: 65160)).isEmpty)
            }
        }
    }

    @Test("PAWS: a segment marked old carries a TSval before every one the tester sent, leaves its clock alone, goes even to TIME-WAIT, and is written out in a case")
    func oldTSval() throws {
        let offer = TesterOptions(mss: 1460, windowScale: nil, sackPermitted: false, timestamps: true)
        var a = OptionAgreement(offer: offer)
        // Before agreement there is no TS.Recent to be older than: a segment marked old goes as any other.
        _ = a.prepare(Segment(seq: 1000, ack: 0, ctl: .syn, window: 65535, tsOld: true))
        #expect(a.testerClock == 2, "the SYN took TSval 1")
        #expect(Self.judge(&a, try Self.sent([.syn, .ack], options: Self.linuxSYNACK, seq: 5000, ack: 1001, window: 65160)).isEmpty)
        #expect(a.timestampsAgreed)
        let old = a.prepare(Segment(seq: 1001, ack: 5001, ctl: .ack, window: 65535, dataLength: 10, tsOld: true))
        #expect(old == [.noOperation, .noOperation, .timestamps(value: a.oldTSval, echo: 7000)])
        #expect(TCPModel.seqLess(a.oldTSval, a.firstTSval) && a.firstTSval &- a.oldTSval == 1 << 20)
        #expect(a.testerClock == 2, "an old TSval does not tick the clock")
        #expect(a.prepare(Segment(seq: 1001, ack: 5001, ctl: .ack, window: 65535)) == [.noOperation, .noOperation, .timestamps(value: 2, echo: 7000)])
        // The old TSval was sent: an echo of it is no "TSval the tester never sent" (a conformance run's false verdict, after a
        // simultaneous open's SYN carried it).
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 7003, echo: a.oldTSval)], seq: 5001)).isEmpty)
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 7004, echo: a.oldTSval &- 1)], seq: 5001)) == [.timestampEcho])
        // A SYN to TIME-WAIT goes without Timestamps (no RFC 6191 reuse), unless it is old: PAWS refuses it first.
        let reuse = a.prepare(Segment(seq: 9000, ctl: .syn, window: 65535), reuse: true)
        #expect(!reuse.contains { if case .timestamps = $0 { true } else { false } })
        let oldSYN = a.prepare(Segment(seq: 9000, ctl: .syn, window: 65535, tsOld: true), reuse: true)
        #expect(oldSYN.contains(.timestamps(value: a.oldTSval, echo: 0)), "\(oldSYN)")
        // A kept case writes the old TSval out; its TSecr echoes the target's last TSval (`ecr *`), and it parses back.
        let line = CaseText.stepLine(.segment(Segment(seq: 1, ack: 1, ctl: .ack, window: 65535, dataLength: 10, tsOld: true)), offer: offer)
        #expect(line == "< . 1:11(10) ack 1 win 65535 <nop,nop,TS val 4293918721 ecr *>\n", "\(line)")
        let plain = CaseText.stepLine(.segment(Segment(seq: 1, ack: 1, ctl: .ack, window: 65535, dataLength: 10)), offer: offer)
        #expect(!plain.contains("TS val"))
    }

    @Test("RFC 2018 §4: the first SACK block holds the text that drew the ACK (a D-SACK may precede it); reported only later breaks it, reported nowhere is not this rule's")
    func sackFirstBlock() throws {
        var a = OptionAgreement(offer: TesterOptions(mss: 1460, windowScale: nil, sackPermitted: true, timestamps: false))
        _ = a.prepare(Segment(seq: 1000, ctl: .syn, window: 65535))
        #expect(Self.judge(&a, try Self.sent([.syn, .ack], options: [.maxSegmentSize(1460), .sackPermitted], seq: 5000, ack: 1001)).isEmpty)
        #expect(a.sackAgreed)
        let held = OptionAgreement.SentRange(start: 1101, end: 1111)
        func ack(_ blocks: [(UInt32, UInt32)]) throws -> TimedSegment {
            try Self.sent(.ack, options: [.noOperation, .noOperation, .sack(blocks.map { TCPOption.SACKBlock(left: $0.0, right: $0.1) })], seq: 5001, ack: 1001)
        }
        func verdict(_ answers: [[(UInt32, UInt32)]]) throws -> OptionRule? {
            guard case .option(let m)? = a.judgeFirstBlock(held: held, answers: try answers.map(ack)) else { return nil }
            return m.rule
        }
        #expect(try verdict([[(1101, 1111)]]) == nil)
        #expect(try verdict([[(1051, 1121), (1201, 1211)]]) == nil, "a first block holding more than the segment")
        #expect(try verdict([[(1201, 1211), (1101, 1111)]]) == .sackFirstBlock, "reported, but not first")
        #expect(try verdict([[(1201, 1211)]]) == nil, "not reported at all: the stack did not hold it, the model's to judge")
        #expect(try verdict([[(990, 1000), (1101, 1111)]]) == nil, "a D-SACK below the ACK field first")
        #expect(try verdict([[(1103, 1105), (1101, 1111)]]) == nil, "a D-SACK inside the second block first")
        #expect(try verdict([[(1201, 1211), (1101, 1111)], [(1101, 1111), (1201, 1211)]]) == nil, "a crossing ACK is excused by the one that answers")
        #expect(try verdict([]) == nil)
        #expect(a.tally.judged[.sackFirstBlock] == 7 && a.tally.broken[.sackFirstBlock] == 1, "\(a.tally)")
        var off = OptionAgreement(offer: .mssOnly)
        #expect(off.judgeFirstBlock(held: held, answers: [try ack([(1201, 1211), (1101, 1111)])]) == nil, "no SACK agreed: not judged")
    }

    @Test("SACK blocks: none without SACK-Permitted, edges in order, within what the tester sent")
    func sack() throws {
        var off = OptionAgreement(offer: .mssOnly)
        _ = off.prepare(Segment(seq: 1000, ack: 0, ctl: .syn, window: 65535, dataLength: 0))
        _ = off.prepare(Segment(seq: 1001, ack: 5001, ctl: .ack, window: 65535, dataLength: 100))
        #expect(Self.judge(&off, try Self.sent(.ack, options: [.sack([.init(left: 1001, right: 1101)])])) == [.sackPermission])
        var a = OptionAgreement(offer: TesterOptions(sackPermitted: true))
        _ = a.prepare(Segment(seq: 1000, ack: 0, ctl: .syn, window: 65535, dataLength: 0))
        _ = a.prepare(Segment(seq: 1101, ack: 5001, ctl: .ack, window: 65535, dataLength: 100))
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.sack([.init(left: 1101, right: 1201)])])).isEmpty)
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.sack([.init(left: 1201, right: 1101)])])) == [.sackBlockEdges])
        #expect(Self.judge(&a, try Self.sent(.ack, options: [.sack([.init(left: 1101, right: 1301)])])) == [.sackReceivedData])
    }

    /// The option tests' verdicts by requirement: each rule counts the segments it could have judged broken, and
    /// those that broke it; the report's records and Markdown say them, and shards add up.
    @Test("each rule tallies the segments it judged and those that broke it; reports list them by requirement")
    func tally() throws {
        var a = OptionAgreement(offer: TesterOptions(mss: 1460, sackPermitted: false, timestamps: true))
        _ = a.prepare(Segment(seq: 1000, ack: 0, ctl: .syn, window: 65535, dataLength: 0))
        _ = Self.judge(&a, try Self.sent([.syn, .ack], options: Self.linuxSYNACK, ack: 1001))
        _ = Self.judge(&a, try Self.sent(.ack, options: [.noOperation, .noOperation, .timestamps(value: 7001, echo: 1)], text: 100, seq: 5001))
        _ = Self.judge(&a, try Self.sent(.ack, options: [], seq: 5101))
        _ = Self.judge(&a, try Self.sent(.rst, options: [], seq: 5101))
        let t = a.tally
        #expect(t.judged[.timestampsEverySegment] == 2 && t.broken[.timestampsEverySegment] == 1, "\(t)")
        #expect(t.judged[.timestampEcho] == 1 && t.broken[.timestampEcho] == nil)
        #expect(t.judged[.effectiveMSS] == 1 && t.judged[.shiftAbove14] == 1 && t.judged[.sackPermission] == 3)
        #expect(t.judged[.sackBlockEdges] == nil, "no SACK block sent, none judged")
        var sum = OptionCoverage()
        sum.count(a)
        sum.count(a)
        let records = try #require(sum.rules.records)
        let ts = try #require(records.first { $0.rule == "timestamps-every-segment" })
        #expect(ts.judged == 4 && ts.broken == 2 && ts.clause == "RFC 7323 §3.2" && ts.requirement == nil)
        #expect(records.first { $0.rule == "effective-mss" }?.requirement == "MUST-16")
        var r = ConformReport(target: "t", profile: "rfc9293", shards: ["1/2"], seconds: 1, settings: [:], results: [])
        r.options = records
        let md = ConformRender.markdown(r)
        #expect(md.contains("### Options") && md.contains("| `timestamps-every-segment` | — | RFC 7323 §3.2 | 4 | 2 |"), "\(md)")
        var other = r
        other.shards = ["2/2"]
        let merged = try #require(ConformReport.merge([r, other]))
        #expect(merged.options?.first { $0.rule == "timestamps-every-segment" }?.judged == 8)
    }

    @Test("an offer is read back from its text, and a bad one names its column")
    func parsing() throws {
        let none = try TesterOptions(parsing: "none"), two = try TesterOptions(parsing: "TS,wscale 0")
        #expect(none == TesterOptions(mss: nil))
        #expect(two == TesterOptions(mss: nil, windowScale: 0, timestamps: true))
        #expect(TesterOptions.combinations.count == 32 && Set(TesterOptions.combinations).count == 32)
        do {
            _ = try TesterOptions(parsing: "mss 1460,sack")
            Issue.record("accepted 'sack'")
        } catch {
            #expect(error.column == 9 && error.reason.contains("unknown option 'sack'"))
        }
        #expect(throws: TesterOptionsError.self) { try TesterOptions(parsing: "mss 0") }
        #expect(throws: TesterOptionsError.self) { try TesterOptions(parsing: "TS,TS") }
    }

    @Test("a step whose only mismatches are in the options is one finding per rule, in any state, with its requirement")
    func signature() throws {
        var a = OptionAgreement(offer: .mssOnly)
        var t = try Self.sent([.psh, .ack], options: [], text: 1500)
        let m = a.observe(&t)
        let s1 = Signature(state: .established, decidedBy: "x", expected: [], expectedState: .established, observed: [], observedState: .established, mismatches: m)
        let s2 = Signature(state: .closeWait, decidedBy: "y", expected: [], expectedState: .closeWait, observed: [], observedState: .closeWait, mismatches: m)
        #expect(s1 == s2 && s1 == .option(.effectiveMSS))
        #expect(s1.description == "any state | option effective-mss | violates MUST-16 (RFC 9293 §3.7.1)")
        #expect(s1.requirements == [RequirementID(.must, 16)] && s1.verdictClass == .violates)
        // Beside a divergence of the step's segments, the step's own signature stands (the option fault is in its log).
        let both = m + [.state(expected: .established, observed: .closed)]
        let c = Signature(state: .established, decidedBy: "x", expected: [], expectedState: .established, observed: [], observedState: .closed, mismatches: both)
        if case .step = c {} else { Issue.record("\(c)") }
    }
}
