import Core
import Cases
import Checker
import Foundation
import Link
import Targets
import TestSupport
import Testing

/// Case files against the real kernel: the examples pass, a wrong expectation fails at its line, and a run
/// killed by a signal leaves no namespace behind.
@Suite("Case files against Linux", .serialized)
struct CaseRunTests {
    static let examples = Repository.url("Corpus/examples")

    static var exampleNames: [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: examples.path)) ?? []).filter { $0.hasSuffix(".case") }.sorted()
    }

    static func runCase(_ path: String, text: String? = nil, configuration: Topology.Configuration = .init()) throws -> CaseResult {
        let t = try text ?? String(contentsOfFile: path, encoding: .utf8)
        let (file, diags) = CaseParser.parse(path: path, text: t)
        #expect(diags.isEmpty, "\(diags.map(\.rendered))")
        let target = try LinuxTarget(configuration.applying(caseOptions: file.options))
        defer { target.close() }
        return CaseRunner(target: target, file: file).run()
    }

    @Test("the shipped examples include the required ones")
    func requiredExamples() {
        let names = Self.exampleNames
        #expect(names.contains("handshake-passive.case"))
        for needed in ["active-open", "rst-closed-port", "simultaneous-close", "rst-established"] {
            #expect(names.contains("\(needed).case"), "missing \(needed).case")
        }
    }

    @Test("every example case passes against the kernel", arguments: exampleNames)
    func example(name: String) throws {
        let r = try Self.runCase(Self.examples.appendingPathComponent(name).path)
        #expect(r.passed, "\(CaseReport.text(r))")
        #expect(r.steps.count >= 5)
    }

    /// Keep-alive on the kernel (RFC 9293 §3.8.4), with SO_KEEPALIVE, TCP_KEEPIDLE=1, TCP_KEEPINTVL=1 set by the
    /// application: an idle connection is probed at SND.NXT-1 after a second, and given up with a reset by the 3 s
    /// user timeout; a connection opened simultaneously is never probed (tcp_finish_connect arms the timer, the
    /// simultaneous open's way to ESTABLISHED does not: the linux profile's `linux.keepalive.unarmed`).
    @Test("keep-alive: a probe at SND.NXT-1 after the idle time, the reset when they go unanswered; none after a simultaneous open")
    func keepalive() throws {
        let config = Topology.Configuration(keepalive: KeepaliveSetting(idle: 1, interval: 1, probes: 3))
        let probed = try Self.runCase("keepalive.case", text: """
            connect
            > S 0:0(0) win *
            < S. 0:0(0) ack 1 win 65535 <mss 1460>
            > . 1:1(0) ack 1 win *
            state ESTABLISHED
            wait 1200ms
            > . 0:0(0) ack 1 win *
            state ESTABLISHED
            wait 2300ms
            > . 0:0(0) ack 1 win *
            > R. 1:1(0) ack 1 win *
            state CLOSED
            """, configuration: config)
        #expect(probed.passed, "\(CaseReport.text(probed))")
        let simultaneous = try Self.runCase("keepalive-simultaneous.case", text: """
            connect
            > S 0:0(0) win *
            < S 0:0(0) win 65535 <mss 1460>
            > S. 0:0(0) ack 1 win *
            < . 1:1(0) ack 1 win 65535
            state ESTABLISHED
            wait 2500ms
            > none
            state ESTABLISHED
            """, configuration: config)
        #expect(simultaneous.passed, "\(CaseReport.text(simultaneous))")
    }

    @Test("a wrong expectation fails at its own line, and the run goes on to the end")
    func wrongExpectation() throws {
        let path = Self.examples.appendingPathComponent("handshake-passive.case").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        let bad = try #require(lines.firstIndex(where: { $0.hasPrefix("> . 1:1(0) ack 11") }))
        var changed = lines
        changed[bad] = changed[bad].replacingOccurrences(of: "ack 11", with: "ack 12")
        let r = try Self.runCase(path, text: changed.joined(separator: "\n"))
        #expect(!r.passed)
        #expect(r.failures == 1)
        let firstFailure = r.steps.first { $0.failed }
        let failed = try #require(firstFailure)
        #expect(failed.line == bad + 1)
        #expect(failed.verdict == .mismatch(["ack: expected 12, observed 11"]))
        // The steps after it still ran: the last one (recv) is judged.
        #expect(r.steps.last?.expected == "recv 100 = 10" && r.steps.last?.verdict == .ok)
        let report = CaseReport.text(r)
        #expect(report.contains("MISMATCH"))
        #expect(report.contains("^ ack: expected 12, observed 11"))
    }
}

/// The `tcpspec run` command: exit codes, messages, and cleanup when interrupted.
@Suite("tcpspec run", .serialized)
struct RunCommandTests {
    static let executable = Repository.tcpspec

    static func tmp(_ name: String, _ text: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let p = dir.appendingPathComponent(name).path
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    static func start(_ args: [String]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.currentDirectoryURL = Repository.root
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err)
    }

    static func run(_ args: [String]) throws -> (Int32, String, String) {
        let (p, out, err) = try start(args)
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test("exit 0 on a passing case, with the pcap written and readable by tshark")
    func passes() throws {
        let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-\(UUID().uuidString).pcap").path
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let (code, out, _) = try Self.run(["run", "Corpus/examples/active-open.case", "--target", "linux", "--pcap", pcap])
        #expect(code == 0, "\(out)")
        #expect(out.contains("10 steps, 0 divergences; pcap: \(pcap)"))
        let tshark = Process()
        tshark.executableURL = URL(fileURLWithPath: "/usr/bin/tshark")
        tshark.arguments = ["-r", pcap, "-T", "fields", "-e", "tcp.flags.str"]
        let o = Pipe()
        tshark.standardOutput = o
        tshark.standardError = Pipe()
        try tshark.run()
        let frames = String(decoding: o.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        tshark.waitUntilExit()
        #expect(tshark.terminationStatus == 0)
        #expect(frames.count == 5, "\(frames)")  // SYN, SYN-ACK, ACK, data, ACK
    }

    @Test("exit 1 on a divergence, naming the line")
    func diverges() throws {
        let path = try Self.tmp("wrong.case", "< S 0:0(0) win 65535\n> R. 0:0(0) ack 2 win 0\n")
        let (code, out, _) = try Self.run(["run", path, "--pcap", path + ".pcap"])
        #expect(code == 1)
        #expect(out.contains("     2  > R. 0:0(0) ack 2 win 0"))
        #expect(out.contains("^ ack: expected 2, observed 1"))
    }

    @Test("exit 2 on a malformed case, with file:line:col and a caret")
    func malformed() throws {
        let path = try Self.tmp("bad.case", "listen\n< S 0:0(0) wim 65535\nfrobnicate\n")
        let (code, _, err) = try Self.run(["run", path])
        #expect(code == 2)
        #expect(err.contains("\(path):2:12: error[syntax]: expected ack, win, urg, <options> or [modifier], found 'wim'"), "\(err)")
        #expect(err.contains("\(path):3:1: error[syntax]: expected a call"))
        #expect(err.contains("has 2 error(s)"))
        let (code2, _, err2) = try Self.run(["run", "/nonexistent.case"])
        #expect(code2 == 2 && err2.contains("no such case file"))
        let (code3, _, err3) = try Self.run(["run", path, "--ip", "5"])
        #expect(code3 != 0 && err3.contains("--ip is 4 or 6"))
    }

    @Test("without root, tcpspec re-executes itself in a user namespace and the run passes")
    func unprivileged() throws {
        // Everything the unprivileged run touches lives in a fresh world-readable directory.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-nobody-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = dir.appendingPathComponent("tcpspec").path
        // Copied by cp, not in this process: an open-for-writing descriptor here would be inherited by any child
        // another test forks meanwhile, and exec of the copy then fails with ETXTBSY (seen once in CI).
        let cp = Process()
        cp.executableURL = URL(fileURLWithPath: "/bin/cp")
        cp.arguments = [Self.executable, exe]
        try cp.run()
        cp.waitUntilExit()
        #expect(cp.terminationStatus == 0)
        let casePath = dir.appendingPathComponent("rst-closed-port.case").path
        try FileManager.default.copyItem(atPath: CaseRunTests.examples.appendingPathComponent("rst-closed-port.case").path, toPath: casePath)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: exe)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: casePath)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", exe, "run", casePath, "--pcap", dir.appendingPathComponent("nobody.pcap").path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(o)\(e)")
        #expect(o.contains("0 divergences"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("nobody.pcap").path))
    }

    /// The network namespaces the threads of one process are in.
    static func namespaces(ofProcess pid: Int32) -> Set<String> {
        var out = Set<String>()
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            if let l = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/task/\(task)/ns/net") { out.insert(l) }
        }
        return out
    }

    /// The network namespaces of the run with this PID and of every process carrying its marker.
    static func netNamespaces(ofRun pid: Int32) -> Set<String> {
        var out = namespaces(ofProcess: pid)
        for m in RunRegistry.markedProcesses() where m.run.pid == pid { out.formUnion(namespaces(ofProcess: m.pid)) }
        return out
    }


    @Test("SIGINT and SIGTERM in the middle of a run leave no namespace, link or process behind", arguments: [SIGINT, SIGTERM, SIGKILL])
    func interrupted(signal: Int32) throws {
        let path = try Self.tmp("slow.case", "listen\n< S 0:0(0) win 65535\n> S. 0:0(0) ack 1 win *\nwait 20s\n")
        let links = try String(contentsOfFile: "/proc/net/dev", encoding: .utf8)
        let (p, _, _) = try Self.start(["run", path, "--pcap", path + ".pcap"])
        // The run's own namespaces: those its threads are in (other tests make namespaces at the same time, so
        // a system-wide count would blame them on this run).
        let root = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        var mine: Set<String> = []
        for _ in 0..<200 {
            mine = Self.namespaces(ofProcess: p.processIdentifier).subtracting([root])
            if mine.count >= 2 { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(mine.count >= 2, "the run's namespaces never appeared")
        Thread.sleep(forTimeInterval: 0.3)
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
        // SIGINT and SIGTERM: tcpspec's own handler exits 128+signal; SIGKILL: the kernel ends it.
        if signal == SIGKILL {
            #expect(p.terminationReason == .uncaughtSignal)
        } else {
            #expect(p.terminationStatus == 128 + signal)
        }
        // Held by a process of the run (itself, or one carrying its TCPSPEC_RUN marker): the kernel reuses a
        // freed namespace's inode and the tests beside this one make namespaces all the time, so any other
        // process in a namespace with one of these inodes is not evidence of a leak.
        var after = Self.netNamespaces(ofRun: p.processIdentifier)
        for _ in 0..<100 where !after.intersection(mine).isEmpty {
            Thread.sleep(forTimeInterval: 0.02)
            after = Self.netNamespaces(ofRun: p.processIdentifier)
        }
        #expect(after.intersection(mine).isEmpty, "namespaces left: \(after.intersection(mine))")
        #expect(try String(contentsOfFile: "/proc/net/dev", encoding: .utf8).split(separator: "\n").count == links.split(separator: "\n").count)
        #expect(kill(p.processIdentifier, 0) != 0)
    }
}
