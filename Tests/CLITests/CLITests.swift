import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// The `tcpspec` executable, really started: exit codes, output, and real consumers of what it writes
/// (Graphviz's `dot` renders the SVG; the SVG parses as XML).
@Suite("tcpspec command line")
struct CLITests {
    /// The executable sits beside the test bundle in the build directory.
    static let executable: String = {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = bundle.deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("tcpspec").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/tcpspec").path
    }()

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ args: [String], cwd: URL = repo) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.currentDirectoryURL = cwd
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
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
        #expect(r.stderr.contains("no profile named 'bsd'; known profiles: linux, rfc793, rfc9293"))
        let f = try Self.run(["spec", "check", "--frobnicate"])
        #expect(f.status != 0)
        #expect(f.stderr.contains("Unknown option '--frobnicate'"))
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
