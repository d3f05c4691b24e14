import Core
import Cases
import Foundation
import TestSupport
import Testing

/// packetdrill's grammar (parser.y of google/packetdrill) for the lines tcpspec writes: a time, then a packet
/// (`< S. 0:0(0) ack 1 win 65535 <mss 1460,...>`), a system call (`write(4, ..., 10) = 10`), or a shell command;
/// `//` comments and `--option=value` lines.
enum PacketdrillGrammar {
    // A time, or packetdrill's relative range (`+0~+0.5`: event_time '+' time '~' '+' time).
    static let time = #"((0|\+\d+(\.\d+)?|\+\.\d+|\d+(\.\d+)?)|\+\d+(\.\d+)?~\+\d+(\.\d+)?)"#
    static let flags = #"([SFRPUEW]+\.?|\.)"#
    static let number = #"\d+"#
    static let option = #"(mss \d+|wscale \d+|sackOK|nop|eol|TS val \d+ ecr \d+|sack( \d+:\d+)+)"#
    static let options = #"<(\.\.\.|\#(option)(,\#(option))*)>"#
    static let packet = #"^\#(time)\s+[<>] \#(flags) (?<start>\d+):(?<end>\d+)\((?<len>\d+)\)( ack \d+)?( win \d+)?( urg \d+)?( \#(options))?$"#
    static let arg = #"(\.\.\.|-?\d+|[A-Z_][A-Z0-9_|]*|\[\d+\]|\{onoff=\d+, linger=\d+\})"#
    // opt_errno is `WORD note`: an errno name is always followed by its text in parentheses.
    static let syscall = #"^\#(time)\s+[a-z_]+\(\#(arg)(, \#(arg))*\) = -?\d+( E[A-Z]+ \([A-Za-z0-9 ]+\))?$"#
    static let command = #"^\#(time)\s+`[^`]*`$"#
    // A Python block (`%{ … }%`), run by packetdrill at the end with tcp_info as it was at that line.
    static let code = #"^\#(time)\s+%\{ .* \}%$"#

    static func valid(_ line: String) -> Bool {
        if line.isEmpty || line.hasPrefix("//") || line.hasPrefix("--") { return true }
        if let m = line.firstMatch(of: try! Regex(packet)) {
            // parser.y's `seq`: start and end are u32, the payload a u16, and end = start + payload, no wrap.
            let n = ["start", "end", "len"].map { UInt64(String(m.output[$0]?.substring ?? "")) ?? .max }
            return n[0] <= UInt64(UInt32.max) && n[1] <= UInt64(UInt32.max) && n[2] <= 65535 && n[1] == n[0] + n[2]
        }
        return [syscall, command, code].contains { line.range(of: $0, options: .regularExpression) != nil }
    }
}

@Suite("packetdrill export")
struct PacketdrillExportTests {
    static let examples = Repository.url("Corpus/examples")

    @Test("every case of the corpus (examples, findings, each stack's cases) exports to lines of packetdrill's grammar")
    func corpusParses() throws {
        let corpus = Repository.url("Corpus")
        let names = try FileManager.default.subpathsOfDirectory(atPath: corpus.path).filter { $0.hasSuffix(".case") }
        #expect(names.count >= 20)
        for n in names {
            let text = try String(contentsOf: corpus.appendingPathComponent(n), encoding: .utf8)
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
        #expect(!PacketdrillGrammar.valid("+0  < . 4294966365:529(1460) ack 1 win 65535"))
        #expect(!PacketdrillGrammar.valid("+0  < . 100:200(50) ack 1"))
        #expect(!PacketdrillGrammar.valid("+0  read(4, ..., 10) = -1 ECONNRESET"))
        #expect(PacketdrillGrammar.valid("+0  read(4, ..., 10) = -1 ECONNRESET (Connection reset by peer)"))
        #expect(PacketdrillGrammar.valid("+0  %{ assert tcpi_state == TCP_CLOSE, tcpi_state }%"))
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
        #expect(s.contains("+0  > R. 1:1(0) ack 1000001 <...>"))
        #expect(s.contains("+0  > S. 0:0(0) ack 1000001 <mss 1460>"))
        #expect(s.contains("+0  < S 1000000:1000000(0) win 65535 <mss 1460>"))
        #expect(s.hasPrefix("// SPDX-License-Identifier: GPL-2.0\n"))
        // The state is read while the descriptor is open; after the abort nothing can be, and the header says so.
        #expect(s.contains("+0  %{ assert tcpi_state == TCP_ESTABLISHED, 'line 7: state %d, expected TCP_ESTABLISHED' % tcpi_state }%"))
        #expect(s.contains("// > none (not checked: no open descriptor to count the segments sent on)"))
        #expect(s.contains("// Not checked by packetdrill (no open descriptor for tcp_info there): line 10: `> none`."))
    }

    /// The four export faults found by running exports under the real packetdrill.
    @Test("faults found with the real packetdrill: wrapped numbers, errno text, unchecked silence and state, settings as comments")
    func packetdrillFaults() {
        let text = """
        listen
        < S 0:0(0) win 65535 <mss 1460>
        > S. 0:0(0) ack 1 win * <mss 1460>
        < . 1:1(0) ack 1 win 65535
        accept = 0
        < P. 4294966365:4294966465(100) ack 1 win 65535
        > . 1:1(0) ack 1 win *
        > none
        < R 1:1(0) win 0
        state CLOSED
        recv 10 = -1 ECONNRESET
        """
        let (file, diags) = CaseParser.parse(path: "x.case", text: text)
        #expect(diags.isEmpty, "\(diags)")
        let s = PacketdrillExport.script(file, originalText: text, settings: [("net.ipv4.tcp_invalid_ratelimit", "0"), ("net.ipv4.tcp_rmem", "4096 32768 32768")])
        let lines = s.split(separator: "\n").map(String.init)
        #expect(lines.allSatisfy(PacketdrillGrammar.valid), "\(lines.filter { !PacketdrillGrammar.valid($0) })")
        // 1. Text below the tester's ISN is written from the ISN, never wrapped.
        #expect(s.contains("+0  < P. 999069:999169(100) ack 1 win 65535"), "\(s)")
        // 2. errno with its text.
        #expect(s.contains("+0  read(4, ..., 10) = -1 ECONNRESET (Connection reset by peer)"))
        // 3. `> none` counts the segments sent since the input (one expected), `state` asserts tcpi_state.
        #expect(s.contains("+0  %{ segs_out_8 = tcpi_segs_out }%\n+0  < P. 999069"))
        #expect(s.contains("+0.5  %{ assert tcpi_segs_out == segs_out_8 + 1,"))
        #expect(s.contains("%{ assert tcpi_state == TCP_CLOSE,"))
        #expect(!s.contains("Not checked by packetdrill"))
        // 4. Settings as the commands packetdrill runs, before the first call.
        #expect(s.contains("0   `sysctl -q -w net.ipv4.tcp_invalid_ratelimit=\"0\"`\n+0   `sysctl -q -w net.ipv4.tcp_rmem=\"4096 32768 32768\"`\n+0   `ip route change $(ip route show 192.0.2.0/24 | head -1) quickack 1`\n+0   socket("))
    }

    @Test("a case found with delayed ACKs keeps them: no quickack route, pure ACKs expected within a time range")
    func delayedAcks() {
        let text = """
        option delayed-acks on
        connect
        > S 0:0(0) win *
        < S. 0:0(0) ack 1 win 65535 <mss 1460>
        > . 1:1(0) ack 1 win *
        < . 1:2(1) ack 1 win 65535
        > . 1:1(0) ack 2 win *
        """
        let (file, diags) = CaseParser.parse(path: "x.case", text: text)
        #expect(diags.isEmpty, "\(diags)")
        let s = PacketdrillExport.script(file, originalText: text)
        let lines = s.split(separator: "\n").map(String.init)
        #expect(lines.allSatisfy(PacketdrillGrammar.valid), "\(lines.filter { !PacketdrillGrammar.valid($0) })")
        // The route keeps its delayed ACKs, and each pure ACK may come up to the case's timeout late.
        #expect(!s.contains("quickack"), "\(s)")
        #expect(s.contains("+0~+0.5  > . 1:1(0) ack 1000002 <...>"), "\(s)")
        #expect(lines.filter { $0.contains("~") }.count == 2, "\(s)")
    }

    @Test("the application's socket settings a case records (user timeout, keep-alives) become setsockopt calls before connect")
    func socketSettings() {
        let text = """
        option user-timeout 3000ms
        option keepalive 1000ms,2000ms,3
        connect
        > S 0:0(0) win *
        < S. 0:0(0) ack 1 win 65535 <mss 1460>
        > . 1:1(0) ack 1 win *
        wait 1200ms
        > . 0:0(0) ack 1 win *
        """
        let (file, diags) = CaseParser.parse(path: "x.case", text: text)
        #expect(diags.isEmpty, "\(diags)")
        let recorded = SocketSettings.fromCase(file.options)
        #expect(recorded.userTimeout == .some(3) && recorded.keepalive == .some(KeepaliveSetting(idle: 1, interval: 2, probes: 3)))
        let s = PacketdrillExport.script(file, originalText: text, userTimeout: 3000, keepalive: KeepaliveSetting(idle: 1, interval: 2, probes: 3))
        let lines = s.split(separator: "\n").map(String.init)
        #expect(lines.allSatisfy(PacketdrillGrammar.valid), "\(lines.filter { !PacketdrillGrammar.valid($0) })")
        #expect(s.contains("""
        +0  setsockopt(3, IPPROTO_TCP, TCP_USER_TIMEOUT, [3000], 4) = 0
        +0  setsockopt(3, SOL_SOCKET, SO_KEEPALIVE, [1], 4) = 0
        +0  setsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, [1], 4) = 0
        +0  setsockopt(3, IPPROTO_TCP, TCP_KEEPINTVL, [2], 4) = 0
        +0  setsockopt(3, IPPROTO_TCP, TCP_KEEPCNT, [3], 4) = 0
        +0  connect(3, ..., ...)
        """), "\(s)")
        // `off` is a setting too: no R2 of the application's, no keep-alives.
        let off = CaseParser.parse(path: "y.case", text: "option user-timeout off\noption keepalive off\nconnect\n").0
        #expect(SocketSettings.fromCase(off.options).userTimeout == .some(nil) && SocketSettings.fromCase(off.options).keepalive == .some(nil))
        // Malformed values are refused at their column.
        let bad = CaseParser.parse(path: "z.case", text: "option keepalive 1s,1s\noption user-timeout 0\n").1.map(\.rendered)
        #expect(bad.count == 2 && bad[0].contains("z.case:1:18") && bad[0].contains("IDLE,INTERVAL,PROBES") && bad[1].contains("z.case:2:21"), "\(bad)")
    }

    @Test("a tester ISN near the top of the space moves down so that no number wraps")
    func highISN() {
        let text = "option tester-isn 4294967000\nconnect\n> S 0:0(0) <...>\n< S. 0:0(0) ack 1 win 65535\n> . 1:1(0) ack 1 <...>\n< P. 1:1001(1000) ack 1 win 65535\n"
        let (file, diags) = CaseParser.parse(path: "x.case", text: text)
        #expect(diags.isEmpty, "\(diags)")
        let s = PacketdrillExport.script(file, originalText: text)
        #expect(s.contains("< P. 1:1001(1000) ack 1 win 65535"), "\(s)")
        #expect(s.split(separator: "\n").map(String.init).allSatisfy(PacketdrillGrammar.valid))
    }
}
