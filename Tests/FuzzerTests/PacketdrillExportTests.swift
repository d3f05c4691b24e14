import Core
import Cases
import Foundation
import TestSupport
import Testing

/// packetdrill's grammar (parser.y of google/packetdrill) for the lines tcpspec writes: a time, then a packet
/// (`< S. 0:0(0) ack 1 win 65535 <mss 1460,...>`), a system call (`write(4, ..., 10) = 10`), or a shell command;
/// `//` comments and `--option=value` lines.
enum PacketdrillGrammar {
    static let time = #"(0|\+\d+(\.\d+)?|\+\.\d+|\d+(\.\d+)?)"#
    static let flags = #"([SFRPUEW]+\.?|\.)"#
    static let number = #"\d+"#
    static let option = #"(mss \d+|wscale \d+|sackOK|nop|eol|TS val \d+ ecr \d+|sack( \d+:\d+)+)"#
    static let options = #"<(\.\.\.|\#(option)(,\#(option))*)>"#
    static let packet = #"^\#(time)\s+[<>] \#(flags) \d+:\d+\(\d+\)( ack \d+)?( win \d+)?( urg \d+)?( \#(options))?$"#
    static let arg = #"(\.\.\.|-?\d+|[A-Z_][A-Z0-9_|]*|\[\d+\]|\{onoff=\d+, linger=\d+\})"#
    static let syscall = #"^\#(time)\s+[a-z_]+\(\#(arg)(, \#(arg))*\) = -?\d+( E[A-Z]+( \([A-Za-z ]+\))?)?$"#
    static let command = #"^\#(time)\s+`[^`]*`$"#

    static func valid(_ line: String) -> Bool {
        if line.isEmpty || line.hasPrefix("//") || line.hasPrefix("--") { return true }
        return [packet, syscall, command].contains { line.range(of: $0, options: .regularExpression) != nil }
    }
}

@Suite("packetdrill export")
struct PacketdrillExportTests {
    static let examples = Repository.url("Corpus/examples")

    @Test("every example case exports to lines of packetdrill's grammar")
    func examplesParse() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.examples.path).filter { $0.hasSuffix(".case") }
        #expect(names.count >= 5)
        for n in names {
            let text = try String(contentsOf: Self.examples.appendingPathComponent(n), encoding: .utf8)
            let (file, diags) = CaseParser.parse(path: n, text: text)
            #expect(diags.isEmpty)
            let script = PacketdrillExport.script(file, originalText: text)
            let bad = script.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !PacketdrillGrammar.valid($0) }
            #expect(bad.isEmpty, "\(n): lines outside packetdrill's grammar: \(bad)")
            let opens = file.lines.contains { if case .call(let c, _) = $0.step { ["listen", "connect"].contains(c.name) } else { false } }
            #expect(script.contains("socket(..., SOCK_STREAM, IPPROTO_TCP) = 3") == opens)
        }
    }

    @Test("the validator rejects what packetdrill rejects")
    func validatorBites() {
        #expect(!PacketdrillGrammar.valid("+0 > S. 0:0(0) ack 1 win *"))
        #expect(!PacketdrillGrammar.valid("+0 > X 0:0(0)"))
        #expect(!PacketdrillGrammar.valid("state ESTABLISHED"))
        #expect(PacketdrillGrammar.valid("+0  > S. 0:0(0) ack 1 <...>"))
        #expect(PacketdrillGrammar.valid("0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3"))
    }

    @Test("a specific translation: calls, packets, abort, comments for what packetdrill cannot say")
    func translation() {
        let text = """
        # abort after data
        listen
        < S 0:0(0) win 65535 <mss 1460>
        > S. 0:0(0) ack 1 win * <mss 1460>
        < . 1:1(0) ack 1 win 65535
        accept = 0
        state ESTABLISHED
        abort
        > R. 1:1(0) ack 1 win *
        > none
        """
        let (file, _) = CaseParser.parse(path: "x.case", text: text)
        let s = PacketdrillExport.script(file, originalText: text)
        #expect(s.contains("+0  accept(3, ..., ...) = 4"))
        #expect(s.contains("+0  setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n+0  close(4) = 0"))
        #expect(s.contains("+0  > R. 1:1(0) ack 1 <...>"))
        #expect(s.contains("+0  > S. 0:0(0) ack 1 <mss 1460>"))
        #expect(s.contains("// state ESTABLISHED"))
        #expect(s.contains("// > none (packetdrill fails on any unexpected packet)"))
    }
}
