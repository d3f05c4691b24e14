import Cases
import Core
import Foundation
import Testing
import TestSupport

/// The case format is written and read in one module: what the writer writes, the parser reads back the same.
@Suite("Case files: written, read back")
struct CaseWriterTests {
    static func corpusCases() -> [String] {
        let dir = Repository.url("Corpus").path
        return (FileManager.default.enumerator(atPath: dir)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".case") }.map { (dir as NSString).appendingPathComponent($0) }
    }

    @Test("every step of every corpus case, written by CaseWriter, parses to the same step")
    func roundTrip() throws {
        let paths = Self.corpusCases()
        #expect(paths.count >= 20, "\(paths.count) corpus cases")
        var lines = 0
        for path in paths {
            let (file, diags) = CaseParser.parse(path: path, text: try String(contentsOfFile: path, encoding: .utf8))
            #expect(diags.isEmpty, "\(path): \(diags)")
            let written = file.lines.map { CaseWriter.line($0.step) }.joined(separator: "\n") + "\n"
            let (again, d2) = CaseParser.parse(path: "written", text: written)
            #expect(d2.isEmpty, "\(path) written as:\n\(written)\n\(d2)")
            #expect(again.lines.map(\.step) == file.lines.map(\.step), "\(path) written as:\n\(written)")
            lines += file.lines.count
        }
        #expect(lines > 100)
    }

    @Test("calls, results, options and wildcards are written as the format documents them")
    func spelling() {
        #expect(CaseWriter.line(.call(.listen(backlog: CaseParser.defaultBacklog), expect: nil)) == "listen")
        #expect(CaseWriter.line(.call(.recv(100), expect: ResultSpec(value: -1, errno: .code(ECONNRESET)))) == "recv 100 = -1 ECONNRESET")
        #expect(CaseWriter.line(.call(.shutdown(.wr), expect: ResultSpec(value: -1, errno: .any))) == "shutdown wr = -1 *")
        let s = SegmentSpec(flags: [.syn, .ack], seq: .value(0), length: .value(0), ack: .value(1), window: .any,
                            options: [.mss(.value(1460)), .nop, .wscale(.any)], moreOptions: true)
        #expect(CaseWriter.line(.expectSegment(s)) == "> S. 0:0(0) ack 1 win * <mss 1460,nop,wscale *,...>")
        #expect(CaseWriter.line(.state(.finWait1)) == "state FIN-WAIT-1")
        #expect(CaseWriter.line(.expectNone) == "> none")
    }

    @Test("modifiers of injected segments are written and read back; an unknown odd-options kind is an error at its column")
    func modifiers() {
        for oddity in OptionOddity.written {
            var s = SegmentSpec(flags: .ack, seq: .value(1), length: .value(0), ack: .value(1), window: .value(502))
            s.oddity = oddity
            s.badChecksum = oddity == .unknownKind
            s.reserved = oddity == .afterEOL ? 3 : nil
            let line = CaseWriter.line(.inject(s))
            #expect(line.hasSuffix("[odd-options \(oddity)]"), "\(line)")
            let (file, diags) = CaseParser.parse(path: "m.case", text: line + "\n")
            #expect(diags.isEmpty, "\(diags)")
            #expect(file.lines.map(\.step) == [.inject(s)], "\(line)")
        }
        let (_, diags) = CaseParser.parse(path: "m.case", text: "< . 1:1(0) ack 1 [odd-options eol-first]\n")
        #expect(diags.count == 1 && diags.first?.message.contains("unknown-kind, syn-options, unaligned, after-eol") == true, "\(diags)")
        #expect(diags.first?.location?.line == 1 && diags.first?.location?.column == 19, "\(diags)")
    }
}
