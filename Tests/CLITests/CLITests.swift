import Core
import Foundation
import Link
import Spec
import Wire
#if canImport(FoundationXML)
import FoundationXML
#endif
import TestSupport
import Testing

/// The `tcpspec` executable, really started: exit codes, output, and real consumers of what it writes
/// (Graphviz's `dot` renders the SVG; the SVG parses as XML).
@Suite("tcpspec command line")
struct CLITests {
    static let executable = Repository.tcpspec
    static let repo = Repository.root

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ args: [String], cwd: URL = repo) throws -> Result {
        try exec(executable, args, cwd: cwd)
    }

    /// Any program, really started; its exit status and both outputs. `whileRunning` is called over and over
    /// until the program exits (both outputs are read meanwhile, so a chatty program never blocks on a pipe).
    static func exec(_ path: String, _ args: [String], cwd: URL = repo, whileRunning: ((Process) -> Void)? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.currentDirectoryURL = cwd
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = Box(Data()), e = Box(Data())
        let group = DispatchGroup()
        for (pipe, box) in [(out, o), (err, e)] {
            DispatchQueue.global().async(group: group) { box.value = pipe.fileHandleForReading.readDataToEndOfFile() }
        }
        if let whileRunning { while p.isRunning { whileRunning(p) } }
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o.value, as: UTF8.self), stderr: String(decoding: e.value, as: UTF8.self))
    }

    final class Box<T>: @unchecked Sendable {
        var value: T
        init(_ v: T) { value = v }
    }

    @Test("spec check passes for every shipped profile", arguments: ["rfc793", "rfc9293", "linux"])
    func check(profile: String) throws {
        let r = try Self.run(["spec", "check", "--profile", profile])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("profile \(profile)") && r.stdout.contains("all checks pass"))
    }

    @Test("spec check fails with file:line:col and a caret on a broken spec")
    func checkBroken() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try String(contentsOf: Self.repo.appendingPathComponent("Spec/rfc793.tcpspec"), encoding: .utf8)
        let broken = base.replacingOccurrences(of: "    enter CLOSE-WAIT\n", with: "    enter CLOSEWAIT\n")
        try broken.write(to: dir.appendingPathComponent("rfc793.tcpspec"), atomically: true, encoding: .utf8)
        let r = try Self.run(["spec", "check", "--profile", "rfc793", "--spec-dir", dir.path])
        #expect(r.status == 1)
        let line = broken.components(separatedBy: "\n").firstIndex { $0.contains("enter CLOSEWAIT") }! + 1
        #expect(r.stderr.contains("rfc793.tcpspec:\(line):11: error[unknownName]: unknown state 'CLOSEWAIT'"), "\(r.stderr)")
        #expect(r.stderr.contains("          ^"))
        #expect(r.stderr.contains("profile 'rfc793' has"))
    }

    @Test("an unknown profile and an unknown flag are refused with a clear message")
    func badInput() throws {
        let r = try Self.run(["spec", "check", "--profile", "bsd"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no profile named 'bsd'; known profiles: linux, "))
        #expect(r.stderr.contains(", rfc793, rfc9293, "))
        let f = try Self.run(["spec", "check", "--frobnicate"])
        #expect(f.status != 0)
        #expect(f.stderr.contains("Unknown option '--frobnicate'"))
    }

    @Test("fuzz: each divergence says what differed, typed, in text and JSON")
    func fuzzSaysWhatDiffered() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-differs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["fuzz", "--target", "reference:fin-wrong-ack", "--profile", "rfc9293", "--cases", "300", "--seed", "7", "--corpus", dir.path]
        let r = try Self.run(args)
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("    differs: segments: expected . 2:2(0) ack 2, observed . 2:2(0) ack 1"), "\(r.stdout)")
        // Its own corpus: in the first one the divergences are known already and would not be reported again.
        let j = try Self.run(args.dropLast(2) + ["--corpus", dir.path + "-json", "--json"])
        defer { try? FileManager.default.removeItem(atPath: dir.path + "-json") }
        #expect(j.stdout.contains("\"differs\": [\"segments: expected . 2:2(0) ack 2, observed . 2:2(0) ack 1\"]"), "\(j.stdout)")
    }

    @Test("a bad target description or an unknown target name is refused with file:line:col or the list of targets")
    func badTarget() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("stack.toml")
        try "name = \"stack\"\n[start]\ncommand = \"./agent\"\n".write(to: bad, atomically: true, encoding: .utf8)
        let r = try Self.run(["fuzz", "--target", bad.path, "--duration", "1s"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(bad.path):3:11: error: 'command' is an array of strings, not a string"), "\(r.stderr)")
        let u = try Self.run(["conform", "--target", "no-such-stack", "--out", dir.appendingPathComponent("out").path])
        #expect(u.status == 2)
        #expect(u.stderr.contains("unknown target 'no-such-stack'") && u.stderr.contains("pytcp"), "\(u.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path), "a refused run left output behind")
        let d = try Self.run(["diff", "--target", "linux"])
        #expect(d.status != 0)
        #expect(d.stderr.contains("diff takes exactly two --target options"))
    }

    @Test("run: a case's recorded socket settings (keep-alive, user timeout) are the target's; a userspace stack set otherwise is refused")
    func caseSocketSettings() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let body = """
        connect
        > S 0:0(0) win *
        < S. 0:0(0) ack 1 win 65535 <mss 1460>
        > . 1:1(0) ack 1 win *
        state ESTABLISHED
        wait 1200ms
        > . 0:0(0) ack 1 win *
        state ESTABLISHED

        """
        let with = dir.appendingPathComponent("probe.case"), without = dir.appendingPathComponent("plain.case")
        try ("option keepalive 1000ms,1000ms,3\noption user-timeout off\n" + body).write(to: with, atomically: true, encoding: .utf8)
        try body.write(to: without, atomically: true, encoding: .utf8)
        let pcap = dir.appendingPathComponent("x.pcap").path
        // The reference stack probes only because the case turned keep-alives on.
        let r = try Self.run(["run", with.path, "--target", "reference", "--pcap", pcap])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let plain = try Self.run(["run", without.path, "--target", "reference", "--pcap", pcap])
        #expect(plain.status == 1, "\(plain.stdout)\(plain.stderr)")
        // A userspace stack's settings are its description's: PyTCP's (1s,1s,3) are not the case's (2s,1s,3).
        let other = dir.appendingPathComponent("other.case")
        try ("option keepalive 2000ms,1000ms,3\n" + body).write(to: other, atomically: true, encoding: .utf8)
        let p = try Self.run(["run", other.path, "--target", "pytcp", "--pcap", pcap])
        #expect(p.status == 2, "\(p.stdout)\(p.stderr)")
        #expect(p.stderr.contains("\(other.path): the case was found with user-timeout 3000ms, keepalive 2000ms,1000ms,3; the pytcp target runs with user-timeout 3000ms, keepalive 1000ms,1000ms,3 (its description's [application] sets them)"), "\(p.stderr)")
        // And --keepalive is not a userspace stack's.
        let k = try Self.run(["run", without.path, "--target", "pytcp", "--keepalive", "1s,1s,3"])
        #expect(k.status == 2 && k.stderr.contains("--keepalive is for the linux and reference targets"), "\(k.stderr)")
        let d = try Self.run(["run", without.path, "--target", "pytcp", "--delayed-acks"])
        #expect(d.status == 2 && d.stderr.contains("--delayed-acks is for the linux and reference targets"), "\(d.stderr)")
        // A case found with delayed ACKs: the reference stack then holds the handshake's ACK 200 ms, within the
        // 500 ms the case waits for an expected segment.
        let delayed = dir.appendingPathComponent("delayed.case")
        try ("option delayed-acks on\n" + body.replacingOccurrences(of: "wait 1200ms\n> . 0:0(0) ack 1 win *\n", with: "")).write(to: delayed, atomically: true, encoding: .utf8)
        let dr = try Self.run(["run", delayed.path, "--target", "reference", "--pcap", pcap])
        #expect(dr.status == 0 && dr.stdout.contains("delayed ACKs=200ms"), "\(dr.stdout)\(dr.stderr)")
        let bad = dir.appendingPathComponent("bad.case")
        try "option delayed-acks sometimes\nconnect\n".write(to: bad, atomically: true, encoding: .utf8)
        let br = try Self.run(["run", bad.path, "--target", "reference"])
        #expect(br.status == 2 && br.stderr.contains("\(bad.path):1:21: error[syntax]: option delayed-acks is on or off"), "\(br.stderr)")
    }

    @Test("check: exit 0 on a clean capture, 1 with violations (JSON names the frame), 2 on a file that is not a capture")
    func checkCommand() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func capture(_ name: String, _ segs: [(Bool, ControlBits, UInt32, UInt32, Int)]) throws -> String {
            var frames: [Frame] = []
            for (k, (fromClient, flags, seq, ack, len)) in segs.enumerated() {
                var tcp = TCPHeader(sourcePort: fromClient ? 40000 : 80, destinationPort: fromClient ? 80 : 40000, seq: seq, ack: ack, flags: flags, window: 64000)
                tcp.payload = [UInt8](repeating: 0x41, count: len)
                let (c, s) = (IPAddress("192.0.2.1")!, IPAddress("192.0.2.2")!)
                let p = Packet(ethernet: EthernetHeader(destination: MACAddress([2, 0, 0, 0, 0, 2]), source: MACAddress([2, 0, 0, 0, 0, 1])),
                               ip: .v4(IPv4Header(source: fromClient ? c : s, destination: fromClient ? s : c)), tcp: tcp)
                frames.append(Frame(time: 1_700_000_000 + Double(k) / 1000, bytes: p.encode(), direction: .captured))
            }
            let path = dir.appendingPathComponent(name).path
            try PcapWriter.write(frames, linkType: .ethernet, to: path)
            return path
        }
        let open: [(Bool, ControlBits, UInt32, UInt32, Int)] = [(true, .syn, 1000, 0, 0), (false, [.syn, .ack], 5000, 1001, 0), (true, .ack, 1001, 5001, 0)]
        let clean = try capture("clean.pcap", open + [(true, [.fin, .ack], 1001, 5001, 0), (false, [.fin, .ack], 5001, 1002, 0), (true, .ack, 1002, 5002, 0)])
        let r0 = try Self.run(["check", clean])
        #expect(r0.status == 0, "\(r0.stdout)\(r0.stderr)")
        #expect(r0.stdout.contains("summary: 1 connections, 0 with violations, 0 violations"))
        let bad = try capture("bad.pcap", open + [(true, [.fin, .ack], 1001, 5001, 0), (false, .ack, 5001, 1002, 0), (true, [.psh, .ack], 1002, 5001, 5)])
        let r1 = try Self.run(["check", bad, "--json"])
        #expect(r1.status == 1)
        let json = try JSONSerialization.jsonObject(with: Data(r1.stdout.utf8)) as? [String: Any]
        let conns = json?["connections"] as? [[String: Any]]
        let v = (conns?.first?["violations"] as? [[String: Any]])?.first
        #expect(v?["frame"] as? Int == 6)
        #expect(v?["state"] as? String == "FIN-WAIT-2")
        let text = dir.appendingPathComponent("notes.txt").path
        try "not a capture".write(toFile: text, atomically: true, encoding: .utf8)
        let r2 = try Self.run(["check", text])
        #expect(r2.status == 2)
        #expect(r2.stderr.contains("\(text): not a pcap or pcapng file"), "\(r2.stderr)")
        // Damaged: cut inside the last record, or two captures run together. Judged up to the damage, then exit 3
        // (never 0: a corrupt capture must not pass as clean), saying where.
        let whole = try Data(contentsOf: URL(fileURLWithPath: clean))
        let cut = dir.appendingPathComponent("cut.pcap").path
        try whole.prefix(whole.count - 5).write(to: URL(fileURLWithPath: cut))
        let r3 = try Self.run(["check", cut])
        #expect(r3.status == 3, "\(r3.stdout)\(r3.stderr)")
        #expect(r3.stderr.contains("\(cut): damaged capture: the file ends inside frame 6"), "\(r3.stderr)")
        #expect(r3.stdout.contains("summary: 1 connections, 0 with violations"), "\(r3.stdout)")
        let two = dir.appendingPathComponent("two.pcap").path
        try (whole + whole).write(to: URL(fileURLWithPath: two))
        let r4 = try Self.run(["check", two])
        #expect(r4.status == 3, "\(r4.stdout)\(r4.stderr)")
        #expect(r4.stderr.contains("damaged capture"), "\(r4.stderr)")
        // One judging thread or several: the same verdict; no thread at all is refused before reading.
        let r5 = try Self.run(["check", bad, "--json", "--jobs", "1"])
        #expect(r5.status == 1 && r5.stdout.replacingOccurrences(of: #""seconds" : [0-9.e-]+"#, with: "", options: .regularExpression)
                == r1.stdout.replacingOccurrences(of: #""seconds" : [0-9.e-]+"#, with: "", options: .regularExpression), "\(r5.stdout)")
        let r6 = try Self.run(["check", bad, "--jobs", "0"])
        #expect(r6.status == 64 && r6.stderr.contains("--jobs must be between 1 and 256, not 0"), "\(r6.status) \(r6.stderr)")
    }

    @Test("export DIR: every case below it, subfolders kept, each script with the target's settings as commands")
    func exportTree() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-export-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let corpus = Repository.url("Corpus").path
        let r = try Self.run(["export", corpus, "--output-dir", out])
        #expect(r.status == 0, "\(r.stderr)")
        let cases = try FileManager.default.subpathsOfDirectory(atPath: corpus).filter { $0.hasSuffix(".case") }
        let scripts = try FileManager.default.subpathsOfDirectory(atPath: out).filter { $0.hasSuffix(".pkt") }
        #expect(cases.count > 20 && Set(scripts) == Set(cases.map { ($0 as NSString).deletingPathExtension + ".pkt" }))
        let one = try String(contentsOfFile: out + "/examples/rst-challenge.pkt", encoding: .utf8)
        #expect(one.contains("`sysctl -q -w net.ipv4.tcp_invalid_ratelimit=\"0\"`") && one.contains("quickack 1`"), "\(one)")
    }

    @Test("spec requirements accounts for all of Appendix B (text and JSON); a report of another profile is refused")
    func requirements() throws {
        let r = try Self.run(["spec", "requirements", "--profile", "rfc9293"])
        #expect(r.status == 0, "\(r.stdout.suffix(2000))\(r.stderr)")
        #expect(r.stdout.contains("119 requirements (69 MUST, 31 SHLD, 18 MAY, 1 REC)"))
        #expect(r.stdout.contains("unaccounted 0") && r.stdout.contains("conflict 0"), "\(r.stdout.suffix(400))")
        let j = try Self.run(["spec", "requirements", "--profile", "linux", "--json"])
        #expect(j.status == 0)
        let rows = (try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])?["rows"] as? [[String: Any]] ?? []
        #expect(rows.count == 119)
        #expect(rows.allSatisfy { ["implemented", "unjudged", "other-profile"].contains($0["status"] as? String ?? "") })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-req-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = try Self.run(["conform", "--target", "reference", "--profile", "rfc9293", "--out", dir.path])
        #expect(c.status == 0, "\(c.stdout)\(c.stderr)")
        let joined = try Self.run(["spec", "requirements", "--profile", "rfc9293", "--report", dir.path + "/report.json"])
        #expect(joined.status == 0 && joined.stdout.contains(" conforms"), "\(joined.stderr)")
        let other = try Self.run(["spec", "requirements", "--profile", "linux", "--report", dir.path + "/report.json"])
        #expect(other.status == 2 && other.stderr.contains("--profile rfc9293"), "\(other.stderr)")
    }

    @Test("spec table is Markdown naming the rules of every state")
    func table() throws {
        let r = try Self.run(["spec", "table", "--profile", "rfc9293"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("# RFC 9293"))
        for state in ["CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"] {
            #expect(r.stdout.contains("## SEGMENT ARRIVES in \(state)\n"))
            #expect(r.stdout.contains("| \(state) | "))
        }
        #expect(r.stdout.contains("`rst.challenge`"))
        #expect(r.stdout.contains("RFC 5961 §3.2"))
    }

    @Test("spec graph renders through the real Graphviz into SVG with every state")
    func graph() throws {
        let dot = try Self.run(["spec", "graph", "--profile", "rfc793", "--format", "dot"])
        #expect(dot.status == 0)
        #expect(dot.stdout.contains("\"CLOSE-WAIT\" -> \"LAST-ACK\" [label=\"CLOSE / snd data/FIN\"]"), "\(dot.stdout)")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-\(UUID().uuidString).svg")
        defer { try? FileManager.default.removeItem(at: out) }
        let svg = try Self.run(["spec", "graph", "--profile", "rfc793", "--format", "svg", "-o", out.path])
        #expect(svg.status == 0, "\(svg.stderr)")
        let data = try Data(contentsOf: out)
        let doc = try XMLDocument(data: data)
        #expect(doc.rootElement()?.name == "svg")
        // The node labels, read as XML text (Graphviz writes '-' as an entity).
        let labels = Set(try doc.nodes(forXPath: "//*[local-name()='text']").compactMap(\.stringValue))
        for state in ["CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"] {
            #expect(labels.contains(state), "no node \(state) in the SVG")
        }
    }

    @Test("spec explain gives the rule chain with citations")
    func explain() throws {
        let r = try Self.run(["spec", "explain", "ESTABLISHED", "RST seq=ahead", "--profile", "rfc9293"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("rst: rule rst.challenge [rfc9293]"))
        #expect(r.stdout.contains("cite RFC 9293 §3.10.7.4"))
        #expect(r.stdout.contains("send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"))
        let old = try Self.run(["spec", "explain", "ESTABLISHED", "RST seq=ahead", "--profile", "rfc793"])
        #expect(old.stdout.contains("rst: rule rst.abort [rfc793]"))
        #expect(old.stdout.contains("next state: CLOSED"))
        let bad = try Self.run(["spec", "explain", "ESTABLISHED", "RST seq=sideways"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("classifier seq has no value 'sideways'"))
    }
}

/// `tcpspec conform` end to end, its outputs read by real consumers: the JUnit XML by `junitparser` (PyPI), the
/// HTML rendered by headless Chromium, the SVG parsed as XML; exit codes with and without a baseline.
@Suite("tcpspec conform: reports read by real consumers")
struct ConformCLITests {
    static func tool(_ name: String, _ args: [String]) throws -> CLITests.Result {
        try CLITests.exec("/usr/bin/env", [name] + args)
    }

    @Test("a seeded fault fails the run; junitparser reads the failures; Chromium renders the report; a baseline accepts them")
    func conformReports() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-conform-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("report").path
        let r = try CLITests.run(["conform", "--target", "reference:synrcvd-ignores-rst", "--profile", "rfc9293", "--out", out])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("diverge"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/report.json"))) as! [String: Any]
        let results = json["results"] as! [[String: Any]]
        let failed = results.filter { $0["verdict"] as? String == "diverges" }
        #expect(!failed.isEmpty)

        // JUnit through a real JUnit parser: one testcase per test, a failure per divergence, naming the case.
        let script = """
        import sys, junitparser
        x = junitparser.JUnitXml.fromfile(sys.argv[1])
        cases = [c for s in x for c in s]
        fails = [c for c in cases if c.result and isinstance(c.result[0], junitparser.Failure)]
        skips = [c for c in cases if c.result and isinstance(c.result[0], junitparser.Skipped)]
        print(len(cases), len(fails), len(skips), all('case: ' in (f.result[0].text or '') for f in fails))
        """
        let py = try Self.tool("python3", ["-c", script, out + "/report.xml"])
        #expect(py.status == 0, "junitparser: \(py.stderr)")
        let skipped = results.filter { $0["verdict"] as? String == "unreachable" }.count
        #expect(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(results.count) \(failed.count) \(skipped) True", "\(py.stdout)")

        // The HTML in headless Chromium: the DOM it builds has the summary, the matrix and the diagram.
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
        #expect(chromium != nil, "headless Chromium is needed (Debian: apt-get install chromium)")
        if let chromium {
            let png = dir.appendingPathComponent("report.png").path
            let dom = try Self.tool(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://" + out + "/report.html"])
            #expect(dom.stdout.contains("id=\"summary\"") && dom.stdout.contains("id=\"matrix\"") && dom.stdout.contains("<svg"), "\(dom.stderr.prefix(500))")
            #expect(dom.stdout.contains("\(failed.count) diverge"))
            _ = try Self.tool(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,900", "--screenshot=" + png, "file://" + out + "/report.html"])
            let data = try Data(contentsOf: URL(fileURLWithPath: png))
            // Not blank: a PNG of the page that is more than a single flat colour compresses to far more than 10 kB.
            #expect(data.count > 10_000, "screenshot is \(data.count) bytes")
        }

        // SARIF 2.1.0 against the official OASIS schema (scripts/validate-sarif installs it from PyPI): one result
        // per signature, rule ids the requirements or clauses broken, levels by class, the case file located.
        let sarif: CLITests.Result? = try CLITests.exec(CLITests.repo.appendingPathComponent("scripts/validate-sarif").path, [out + "/report.sarif"])
        #expect(sarif?.status == 0, "\(sarif?.stdout ?? "")\(sarif?.stderr ?? "")")
        let log = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/report.sarif"))) as! [String: Any]
        let run = (log["runs"] as! [[String: Any]])[0]
        let sresults = run["results"] as! [[String: Any]]
        #expect(sresults.count == Set(failed.compactMap { $0["signature"] as? String }).count)
        #expect(sresults.allSatisfy { ($0["level"] as? String) == "error" && !(($0["ruleId"] as? String) ?? "").isEmpty })
        for res in sresults {
            let uri = ((((res["locations"] as! [[String: Any]])[0]["physicalLocation"] as! [String: Any])["artifactLocation"] as! [String: Any])["uri"] as! String)
            #expect(FileManager.default.fileExists(atPath: out + "/" + uri), "\(uri)")
        }

        // The state diagram is well-formed SVG with coloured edges.
        let svg = try String(contentsOfFile: out + "/states.svg", encoding: .utf8)
        #expect((try? XMLDocument(xmlString: svg)) != nil)
        #expect(svg.contains("#c62828") || svg.contains("#2e7d32"))

        // With a baseline listing the divergences, the run passes and says so.
        let sigs = Array(Set(failed.compactMap { $0["signature"] as? String })).sorted()
        var toml = "# test baseline\n"
        for s in sigs { toml += "[[accepted]]\nsignature = \"\(s)\"\nreason = \"seeded fault\"\n\n" }
        let base = dir.appendingPathComponent("b.toml").path
        try toml.write(toFile: base, atomically: true, encoding: .utf8)
        let b = try CLITests.run(["conform", "--target", "reference:synrcvd-ignores-rst", "--profile", "rfc9293", "--out", out, "--baseline", base])
        #expect(b.status == 0, "\(b.stdout)\(b.stderr)")
        #expect(b.stdout.contains("\(sigs.count) accepted, 0 new"))
        // The warm-up is bounded by cases unless told otherwise, and says so.
        let reportText = try String(contentsOfFile: out + "/report.json", encoding: .utf8)
        #expect(reportText.contains("\"warmup\" : \"3000 cases\""), "\(reportText.prefix(400))")
        // An entry the run did not see: accepted as stale, failing only under --strict-baseline.
        try (toml + "[[accepted]]\nsignature = \"LISTEN | gone | expected none → LISTEN | observed none → CLOSED\"\nreason = \"fixed\"\n")
            .write(toFile: base, atomically: true, encoding: .utf8)
        let loose = try CLITests.run(["conform", "--target", "reference:synrcvd-ignores-rst", "--profile", "rfc9293", "--out", out, "--baseline", base])
        #expect(loose.status == 0, "\(loose.stdout)\(loose.stderr)")
        #expect(loose.stdout.contains("1 no longer seen"))
        let strict = try CLITests.run(["conform", "--target", "reference:synrcvd-ignores-rst", "--profile", "rfc9293", "--out", out, "--baseline", base, "--strict-baseline"])
        #expect(strict.status == 1, "\(strict.stdout)\(strict.stderr)")
        #expect(strict.stderr.contains("did not see (--strict-baseline):\n  LISTEN | gone"), "\(strict.stderr)")
        let both = try CLITests.run(["conform", "--target", "reference", "--profile", "rfc9293", "--out", out, "--warmup", "1s", "--warmup-cases", "10"])
        #expect(both.status != 0 && both.stderr.contains("give one"), "\(both.stderr)")
        // A broken baseline is refused before any work, with file:line:col.
        try "[[accepted]]\nsignature = nope\n".write(toFile: base, atomically: true, encoding: .utf8)
        let bad = try CLITests.run(["conform", "--target", "reference", "--profile", "rfc9293", "--out", out, "--baseline", base])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("b.toml:2:13: error: expected a value (a \"string\""), "\(bad.stderr)")
    }

    @Test("shards merge into one report with every test once")
    func shardsMerge() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-merge-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        for i in 1...3 {
            let r = try CLITests.run(["conform", "--target", "reference", "--profile", "rfc9293", "--shard", "\(i)/3", "--out", dir.appendingPathComponent("s\(i)").path])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let m = try CLITests.run(["merge", dir.appendingPathComponent("s1").path, dir.appendingPathComponent("s2").path, dir.appendingPathComponent("s3").path,
                                  "--profile", "rfc9293", "--out", dir.appendingPathComponent("all").path])
        #expect(m.status == 0, "\(m.stderr)")
        let whole = try CLITests.run(["conform", "--target", "reference", "--profile", "rfc9293", "--out", dir.appendingPathComponent("whole").path])
        func ids(_ d: String) throws -> [String] {
            let j = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(d).appendingPathComponent("report.json"))) as! [String: Any]
            return (j["results"] as! [[String: Any]]).map { $0["id"] as! String }.sorted()
        }
        #expect(whole.status == 0)
        #expect(try ids("all") == ids("whole"))
        let bad = try CLITests.run(["conform", "--target", "reference", "--shard", "4/3"])
        #expect(bad.status != 0 && bad.stderr.contains("--shard is i/n"))
    }
}
