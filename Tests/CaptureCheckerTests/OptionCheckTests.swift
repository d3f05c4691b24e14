import Core
import Checker
import Foundation
import Link
import Spec
import TestSupport
import Testing
import Wire

/// The options each end sends, judged offline (RFC 9293 §3.1–§3.2, §3.7.1; RFC 7323; RFC 2018): each fault at
/// its frame with the clause it breaks; what is unknown (a SYN not captured) never judged.
@Suite("Offline checker: options (MSS, window scale, timestamps, PAWS, SACK)")
struct OptionCheckTests {
    /// A handshake that agrees on everything: MSS 536 both ways, window scale 2, timestamps, SACK (frames 1–3).
    /// The client's clock starts at 100, the server's at 7000.
    static func agreed(serverMSS: UInt16? = 536, serverSACK: Bool = true, serverTS: Bool = true, clientTS: Bool = true) -> Script {
        var s = Script()
        var c: [TCPOption] = [.maxSegmentSize(536), .sackPermitted, .windowScale(2)]
        if clientTS { c.append(.timestamps(value: 100, echo: 0)) }
        s.c(.syn, 1000, options: c)
        var o: [TCPOption] = serverMSS.map { [.maxSegmentSize($0)] } ?? []
        if serverSACK { o.append(.sackPermitted) }
        o.append(.windowScale(2))
        if serverTS { o.append(.timestamps(value: 7000, echo: 100)) }
        s.s([.syn, .ack], 5000, ack: 1001, options: o)
        s.c(.ack, 1001, ack: 5001, options: clientTS && serverTS ? [.timestamps(value: 101, echo: 7000)] : [])
        return s
    }

    static func check(_ s: Script, _ name: String, profile: String = "rfc9293") throws -> (CaptureReport, [Violation]) {
        let path = try s.write(name)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CaptureChecker.check(path: path, spec: try Repository.spec(profile))
        return (r, r.connections.flatMap(\.violations))
    }

    static func ts(_ v: UInt32, _ e: UInt32) -> [TCPOption] { [.timestamps(value: v, echo: e)] }

    @Test("agreed options honoured are clean: text within the MSS less the timestamps, echoes, a SACK block for text held")
    func clean() throws {
        var s = Self.agreed()
        s.c([.psh, .ack], 1001, ack: 5001, len: 524, options: Self.ts(102, 7000))            // 4: 536 - 12
        s.c([.psh, .ack], 2049, ack: 5001, len: 100, options: Self.ts(103, 7000))            // 5: 1525..2048 not captured
        s.s(.ack, 5001, ack: 1525, options: Self.ts(7001, 102) + [.sack([.init(left: 2049, right: 2149)])])  // 6
        s.c([.psh, .ack], 1525, ack: 5001, len: 524, options: Self.ts(104, 7001))           // 7: the gap, filled
        s.s(.ack, 5001, ack: 2149, options: Self.ts(7002, 104))                              // 8
        let (r, vs) = try Self.check(s, "opt-clean")
        #expect(vs.isEmpty, "\(vs)")
        #expect(r.connections[0].options == "MSS 536/536, window scale 2/2, timestamps yes/yes, SACK-permitted yes/yes")
        let j = r.connections[0].optionsJudged
        // Every segment with an ACK from the SYN,ACK on echoes (frames 2–8).
        #expect(j.mss == 3 && j.sackBlocks == 1 && j.echoes == 7, "\(j)")
    }

    @Test("text beyond the effective send MSS is flagged at its frame (MUST-16), the options counted in; without an MSS option the default 536 (MUST-15)")
    func mss() throws {
        var s = Self.agreed()
        s.c([.psh, .ack], 1001, ack: 5001, len: 530, options: Self.ts(102, 7000))            // 4: 6 beyond 524
        s.c([.psh, .ack], 1531, ack: 5001, len: 524, options: Self.ts(103, 7000))            // 5: fits
        s.c([.psh, .ack], 2055, ack: 5001, len: 600, options: Self.ts(104, 7000))            // 6: again
        var (_, vs) = try Self.check(s, "opt-mss")
        #expect(vs.count == 1 && vs.first?.frame == 4 && vs.first?.repeats == [6], "\(vs)")
        #expect(vs.first?.expected == "at most 524 octets of text: the MSS 536 192.0.2.2:80 offered, less 12 octets of options")
        #expect(vs.first?.citations.first?.hasPrefix("RFC 9293 §3.7.1 MUST-16") == true)
        // The server offered no MSS: 536 for IPv4.
        var d = Self.agreed(serverMSS: nil, serverTS: false, clientTS: false)
        d.c([.psh, .ack], 1001, ack: 5001, len: 537)                                          // 4
        (_, vs) = try Self.check(d, "opt-mss-default")
        #expect(vs.count == 1 && vs.first?.frame == 4, "\(vs)")
        #expect(vs.first?.expected.contains("the default send MSS 536 (no MSS option offered, MUST-15)") == true, "\(vs)")
    }

    @Test("with the SYN not captured, the SYN,ACK's side's send MSS and the client's window scale are unknown, never judged; the other side's MSS is")
    func mssUnknown() throws {
        var s = Script()
        s.s([.syn, .ack], 5000, ack: 1001, options: [.maxSegmentSize(536), .windowScale(2)])  // 1: the SYN not captured
        s.c(.ack, 1001, ack: 5001)
        s.s([.psh, .ack], 5001, ack: 1001, len: 1400)                                         // 3: the client's MSS unknown
        s.c([.psh, .ack], 1001, ack: 6401, len: 1000)                                         // 4: beyond the server's 536
        let (r, vs) = try Self.check(s, "opt-mss-unknown")
        #expect(vs.count == 1 && vs.first?.frame == 4, "\(vs)")
        #expect(r.connections[0].optionsJudged.mss == 1)
        #expect(r.connections[0].captureNotes.contains { $0.contains("the SYN of 192.0.2.1:40000 was not captured") }, "\(r.connections[0].captureNotes)")
    }

    @Test("once both SYNs carry timestamps, a segment without one is flagged (RFC 7323 §3.2 MUST), a RST is not")
    func timestampsEverySegment() throws {
        var s = Self.agreed()
        s.c([.psh, .ack], 1001, ack: 5001, len: 10)                                           // 4: no TSopt
        s.s(.ack, 5001, ack: 1011, options: Self.ts(7001, 101))                               // 5
        s.c([.psh, .ack], 1011, ack: 5001, len: 10)                                           // 6: again
        s.c(.rst, 1021)                                                                       // 7: a RST may leave it out
        let (_, vs) = try Self.check(s, "opt-ts-missing")
        #expect(vs.count == 1 && vs.first?.frame == 4 && vs.first?.repeats == [6], "\(vs)")
        #expect(vs.first?.citations.first?.contains("MUST be sent in every non-<RST> segment") == true)
        // Not agreed (the SYN,ACK has none): a TSopt later is noted (the receiver MUST ignore it), not a violation.
        var n = Self.agreed(serverTS: false)
        n.c([.psh, .ack], 1001, ack: 5001, len: 10, options: Self.ts(102, 0))
        let (r2, v2) = try Self.check(n, "opt-ts-unagreed")
        #expect(v2.isEmpty, "\(v2)")
        #expect(r2.connections[0].captureNotes.contains { $0.contains("Timestamps option the SYNs did not agree") })
    }

    @Test("a TSecr the peer never sent is flagged; a SYN,ACK with timestamps the SYN did not offer is flagged")
    func echoes() throws {
        var s = Self.agreed()
        s.c([.psh, .ack], 1001, ack: 5001, len: 10, options: Self.ts(102, 7000))
        s.s(.ack, 5001, ack: 1011, options: Self.ts(7001, 103))                               // 5: echoes 103, the client sent 102
        var (_, vs) = try Self.check(s, "opt-echo")
        #expect(vs.count == 1 && vs.first?.frame == 5, "\(vs)")
        #expect(vs.first?.note == "echoes TSval 103, which 192.0.2.1:40000 never sent")
        var t = Self.agreed(clientTS: false)
        t.c([.psh, .ack], 1001, ack: 5001, len: 10)
        (_, vs) = try Self.check(t, "opt-ts-synack")
        #expect(vs.count == 1 && vs.first?.frame == 2 && vs.first?.citations.first?.contains("only if it received a TSopt") == true, "\(vs)")
    }

    @Test("PAWS: text with a TSval older than TS.Recent that its receiver acknowledges is flagged at the ACK (RFC 7323 §5.3 R1); a newer one is clean")
    func paws() throws {
        for (tsval, flagged) in [(UInt32(50), true), (UInt32(103), false)] {
            var s = Self.agreed()
            s.c([.psh, .ack], 1001, ack: 5001, len: 10, options: Self.ts(102, 7000))         // 4: TS.Recent 102 at the server
            s.s(.ack, 5001, ack: 1011, options: Self.ts(7001, 102))                           // 5
            s.c([.psh, .ack], 1011, ack: 5001, len: 10, options: Self.ts(tsval, 7001))        // 6
            s.s(.ack, 5001, ack: 1021, options: Self.ts(7002, flagged ? 102 : tsval))         // 7: takes it
            let (r, vs) = try Self.check(s, "opt-paws")
            if flagged {
                #expect(vs.count == 1 && vs.first?.frame == 7 && vs.first?.endpoint == "192.0.2.2:80", "\(vs)")
                #expect(vs.first?.note == "acknowledges text of frame 6 that PAWS makes unacceptable")
                #expect(vs.first?.citations.first?.hasPrefix("RFC 7323 §5.3 R1") == true)
                #expect(r.connections[0].optionsJudged.pawsDiscards == 1)
            } else {
                #expect(vs.isEmpty, "\(vs)")
            }
        }
        // A receiver that discards it (a duplicate ACK) and takes the text again with a fresh TSval is clean.
        var s = Self.agreed()
        s.c([.psh, .ack], 1001, ack: 5001, len: 10, options: Self.ts(102, 7000))
        s.s(.ack, 5001, ack: 1011, options: Self.ts(7001, 102))
        s.c([.psh, .ack], 1011, ack: 5001, len: 10, options: Self.ts(50, 7001))              // 6: discarded
        s.s(.ack, 5001, ack: 1011, options: Self.ts(7002, 102))                               // 7: the duplicate ACK R1 asks for
        s.c([.psh, .ack], 1011, ack: 5001, len: 10, gap: 0.3, options: Self.ts(400, 7002))    // 8: sent again
        s.s(.ack, 5001, ack: 1021, options: Self.ts(7003, 400))                               // 9
        let (_, vs) = try Self.check(s, "opt-paws-ok")
        #expect(vs.isEmpty, "\(vs)")
    }

    @Test("SACK: without SACK-Permitted (RFC 2018 §4), a block of data never sent, a block whose edges are reversed")
    func sack() throws {
        var s = Self.agreed(serverSACK: false)
        s.c([.psh, .ack], 1001, ack: 5001, len: 10, options: Self.ts(102, 7000))              // 4
        s.s([.psh, .ack], 5001, ack: 1011, len: 10, options: Self.ts(7001, 102))              // 5
        s.s([.psh, .ack], 5021, ack: 1011, len: 10, options: Self.ts(7002, 102))              // 6: 5011..5020 lost
        s.c(.ack, 1011, ack: 5011, options: Self.ts(103, 7001) + [.sack([.init(left: 5021, right: 5031)])])  // 7
        var (_, vs) = try Self.check(s, "opt-sack-perm")
        #expect(vs.count == 1 && vs.first?.frame == 7 && vs.first?.citations.first?.hasPrefix("RFC 2018 §4") == true, "\(vs)")
        var b = Self.agreed()
        b.s([.psh, .ack], 5001, ack: 1001, len: 10, options: Self.ts(7001, 101))              // 4
        b.s([.psh, .ack], 5021, ack: 1001, len: 10, options: Self.ts(7002, 101))              // 5
        b.c(.ack, 1001, ack: 5011, options: Self.ts(103, 7001) + [.sack([.init(left: 5021, right: 9031)])])   // 6: up to 9031
        b.c(.ack, 1001, ack: 5011, options: Self.ts(104, 7002) + [.sack([.init(left: 5031, right: 5021)])])   // 7: reversed
        (_, vs) = try Self.check(b, "opt-sack-blocks")
        #expect(vs.map(\.frame) == [6, 7], "\(vs)")
        #expect(vs.first?.note == "selectively acknowledges data the peer never sent")
        #expect(vs.last?.note == "its SACK block 1 runs from 31 to 21")
    }

    @Test("the option list's format (MUST-68, MUST-69), SYN-only options elsewhere (MUST-65, RFC 2018 §2), a scale above 14")
    func format() throws {
        var s = Self.agreed()
        s.c([.psh, .ack], 1001, ack: 5001, len: 10, options: Self.ts(102, 7000) + [.raw([8, 0, 0, 0])])          // 4: length 0
        s.c([.psh, .ack], 1011, ack: 5001, len: 10, options: Self.ts(103, 7000) + [.endOfList, .raw([0, 7, 0])]) // 5: padding 7
        s.c([.psh, .ack], 1021, ack: 5001, len: 10, options: Self.ts(104, 7000) + [.maxSegmentSize(536)])        // 6
        s.c([.psh, .ack], 1031, ack: 5001, len: 10, options: Self.ts(105, 7000) + [.sackPermitted, .noOperation, .noOperation]) // 7
        s.c([.psh, .ack], 1041, ack: 5001, len: 10, options: Self.ts(106, 7000) + [.raw([2, 7, 0, 0])])          // 8: runs past the end
        let (_, vs) = try Self.check(s, "opt-format")
        let byFrame = Dictionary(grouping: vs, by: \.frame)
        #expect(byFrame[4]?.first?.citations.first?.contains("MUST-68") == true, "\(vs)")
        #expect(byFrame[5]?.first?.citations.first?.contains("MUST-69") == true, "\(vs)")
        #expect(byFrame[6]?.first?.citations.first?.contains("MUST-65") == true, "\(vs)")
        #expect(byFrame[7]?.first?.citations.first?.hasPrefix("RFC 2018 §2") == true, "\(vs)")
        // Past the header's end: the same clause as a length below 2, one violation with its repeats.
        #expect(byFrame[4]?.first?.repeats == [8], "\(vs)")
        var w = Script()
        w.c(.syn, 1000, options: [.maxSegmentSize(536), .windowScale(15)])
        w.s([.syn, .ack], 5000, ack: 1001, options: [.maxSegmentSize(536), .windowScale(2)])
        let (_, wv) = try Self.check(w, "opt-shift")
        #expect(wv.count == 1 && wv.first?.frame == 1 && wv.first?.citations.first?.hasPrefix("RFC 7323 §2.3") == true, "\(wv)")
    }
}
