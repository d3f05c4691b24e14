import Core
import Cases
import Foundation
import Fuzzer
import Spec
import Targets
import TestSupport
import Testing

/// The fuzzer against the real kernel under RFC 793: it must find Linux's deliberate departures from the 1981
/// text (RFC 5961's challenge ACKs for in-window RSTs and SYNs) as separate, minimized, replayable cases.
@Suite("Fuzzer against Linux", .serialized)
struct FuzzLinuxTests {
    @Test("under rfc793 the fuzzer finds the challenge ACKs, minimized, each a case and a pcap tshark reads")
    func rfc793Differences() throws {
        let spec = try Repository.spec("rfc793")
        let target = try LinuxTarget()
        defer { target.close() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-linux-fuzz-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var c = Fuzzer.Configuration()
        c.seed = 1
        c.maxCases = 3000
        c.duration = 120
        c.corpus = dir
        let s = try Fuzzer(spec: spec, target: target, configuration: c).run()
        #expect(s.cases >= 3000)
        #expect(s.cellsCovered > 1000)
        // Linux answers an in-window RST not at RCV.NXT, and an in-window SYN, with an ACK (RFC 5961); RFC 793
        // resets the connection.
        let challenge = s.divergences.filter { d in
            ["rst.abort", "syn.inwindow.ack", "syn.inwindow.noack"].contains(d.rules.last ?? "") && d.observed.hasPrefix(". ")
        }
        #expect(!challenge.isEmpty, "\(s.divergences.map(\.signature))")
        #expect(Set(s.divergences.map(\.signature)).count == s.divergences.count)
        for d in s.divergences.prefix(20) {
            #expect(d.steps <= 8, "\(d.signature): \(d.steps) steps")
            let path = try #require(d.casePath)
            let (file, diags) = CaseParser.parse(path: path, text: try String(contentsOfFile: path, encoding: .utf8))
            #expect(diags.isEmpty, "\(diags.map(\.rendered))")
            #expect(!file.lines.isEmpty)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/tshark")
            p.arguments = ["-r", try #require(d.pcapPath)]
            p.standardOutput = Pipe()
            p.standardError = Pipe()
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
        }
    }
}
