import Core
import Cases
import Foundation
import Link
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `fuzz`, `conform` and `run` killed at random points with SIGINT, SIGTERM and SIGKILL: after each, and after
/// the next start's sweep, nothing of the run remains (namespaces, links, TAP devices, processes, records,
/// temporary or half-written files); and a sweep never touches a live parallel run.
///
/// The points are drawn from a seed (printed; set TCPSPEC_KILL_SEED to replay a failure):
///
/// ```
/// $ TCPSPEC_KILL_SEED=7 swift test --skip-build --filter KillTests
/// ```
@Suite("Kill tests", .serialized)
struct KillTests {
    /// A seeded generator (xorshift64*), so a failing kill can be replayed.
    struct Rand {
        var s: UInt64
        init(_ seed: UInt64) { s = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
        mutating func next() -> UInt64 {
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27
            return s &* 2685821657736338717
        }
        mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    }

    enum Command: String, CaseIterable {
        case fuzzLinux = "fuzz linux", fuzzPyTCP = "fuzz pytcp", conform, run
        func arguments(_ dir: String, duration: String) -> [String] {
            switch self {
            // rfc9293 on Linux diverges: the kill also lands in minimization and corpus writes.
            case .fuzzLinux: ["fuzz", "--target", "linux", "--profile", "rfc9293", "--duration", duration, "--corpus", dir + "/corpus"]
            case .fuzzPyTCP: ["fuzz", "--target", "pytcp", "--duration", duration, "--corpus", dir + "/corpus"]
            // One shard: ~1.5 s, so that some kills land while the reports are written.
            case .conform: ["conform", "--target", "linux", "--profile", "rfc9293", "--warmup", "0", "--shard", "1/16", "--out", dir + "/conform"]
            // A fresh target per case, the last one waiting: kills land in namespace creation, mid-case, pcap writes.
            case .run: ["run", "Corpus/examples", dir + "/slow.case", "--pcap", dir + "/pcaps/"]
            }
        }
    }

    /// One launched run: its identity (pid and start time) and everything of it seen while it ran.
    final class Launch {
        let command: Command
        let process: Process
        let identity: RunRegistry.Identity
        let dir: String
        var namespaces: Set<String> = []
        var agents: Set<RunRegistry.Identity> = []
        init(command: Command, process: Process, identity: RunRegistry.Identity, dir: String) {
            self.command = command
            self.process = process
            self.identity = identity
            self.dir = dir
        }
        var stderr: String { (try? String(contentsOfFile: dir + "/stderr", encoding: .utf8)) ?? "" }
    }

    static func launch(_ command: Command, runDir: String, duration: String = "2s") throws -> Launch {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-kill-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/pcaps", withIntermediateDirectories: true)
        try "listen\n< S 0:0(0) win 65535\n> S. 0:0(0) ack 1 win *\nwait 2s\n".write(toFile: dir + "/slow.case", atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: dir + "/stdout", contents: nil)
        FileManager.default.createFile(atPath: dir + "/stderr", contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: RunCommandTests.executable)
        p.arguments = command.arguments(dir, duration: duration)
        p.currentDirectoryURL = Repository.root
        var env = ProcessInfo.processInfo.environment
        env["TCPSPEC_RUN_DIR"] = runDir
        p.environment = env
        p.standardOutput = FileHandle(forWritingAtPath: dir + "/stdout")
        p.standardError = FileHandle(forWritingAtPath: dir + "/stderr")
        try p.run()
        let pid = p.processIdentifier
        // The start time is read at once: until the test reaps it, the pid is this run's.
        let st = try #require(Sys.processStat(pid)?.startTime)
        return Launch(command: command, process: p, identity: RunRegistry.Identity(pid: pid, startTime: st), dir: dir)
    }

    /// Records the run's namespaces (its threads' and its agents') and agents (from its record) while it runs.
    static func observe(_ l: Launch, runDir: String, root: String) {
        l.namespaces.formUnion(RunCommandTests.namespaces(ofProcess: l.identity.pid).subtracting([root]))
        for a in agents(inRecord: runDir + "/\(l.identity).run") where a.isAlive {
            l.agents.insert(a)
            l.namespaces.formUnion(RunCommandTests.namespaces(ofProcess: a.pid).subtracting([root]))
        }
    }

    /// The processes a record lists as started (whether or not ended since).
    static func agents(inRecord path: String) -> [RunRegistry.Identity] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 3, f[0] == "+process", let pid = Int32(f[1]), let st = UInt64(f[2]) else { return nil }
            return RunRegistry.Identity(pid: pid, startTime: st)
        }
    }

    /// Live (not zombie) processes whose environment carries this run's marker.
    static func marked(_ id: RunRegistry.Identity) -> [Int32] {
        RunRegistry.markedProcesses().filter { $0.run == id }.map(\.pid)
    }

    /// Files under `dir` (recursively) that only a run cut short would leave: temporaries, Foundation's
    /// atomic-write leftovers, cases that do not parse or lack their pcap.
    static func partialFiles(_ dir: String) -> [String] {
        var out: [String] = []
        let fm = FileManager.default
        for rel in (fm.enumerator(atPath: dir)?.allObjects as? [String]) ?? [] {
            let name = (rel as NSString).lastPathComponent, path = dir + "/" + rel
            if name.hasSuffix(".tmp") || name.hasPrefix(".dat.nosync") { out.append(rel) }
            if name.hasSuffix(".case"), rel.contains("corpus/") || rel.contains("conform/cases/") {
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                if !CaseParser.parse(path: path, text: text).1.isEmpty || !text.contains("# signature: ") { out.append(rel + " (does not parse)") }
                if !fm.fileExists(atPath: (path as NSString).deletingPathExtension + ".pcap") { out.append(rel + " (no pcap)") }
            }
            if name == "report.json", (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))) == nil {
                out.append(rel + " (not JSON)")
            }
        }
        return out
    }

    /// Links named tcpspec-* in the root namespace (/proc/net/dev and `ip -o link`): none may ever be there.
    static func rootLinks() throws -> [String] {
        var names = try String(contentsOfFile: "/proc/net/dev", encoding: .utf8).split(separator: "\n").filter { $0.contains("tcpspec") }.map(String.init)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["-o", "link"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        names += text.split(separator: "\n").filter { $0.contains("tcpspec") }.map(String.init)
        return names
    }

    /// The run's namespaces still in use. The kernel reuses a freed namespace's inode number, and parallel runs
    /// (this test's lanes, other tests, other checkouts' runs on the machine) make namespaces all the time: so a
    /// namespace with one of the run's inodes counts as the run's only if a process of the run is in it — the
    /// run itself, or one carrying its marker (tcpspec sets TCPSPEC_RUN before it makes anything, and every
    /// process it starts inherits it). A namespace can outlive its threads only through such a process.
    static func ownNamespacesLeft(_ l: Launch) -> Set<String> {
        var out = Set<String>()
        let mine = Set(marked(l.identity)).union(Sys.isAlive(l.identity.pid, startTime: l.identity.startTime) ? [l.identity.pid] : [])
        for pid in mine { out.formUnion(RunCommandTests.namespaces(ofProcess: pid).intersection(l.namespaces)) }
        return out
    }

    /// A start that sweeps: `tcpspec doctor` with the test's run directory. Its stderr (the sweep's lines).
    static func sweep(runDir: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: RunCommandTests.executable)
        p.arguments = ["doctor"]
        var env = ProcessInfo.processInfo.environment
        env["TCPSPEC_RUN_DIR"] = runDir
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return text
    }

    static func waitFor(_ seconds: Double, _ cond: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while !cond() {
            if Date() > end { return false }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return true
    }

    /// What is still there of a run that ended: everything must be gone (the record only after a sweep).
    static func leftovers(_ l: Launch, runDir: String, recordSwept: Bool) throws -> [String] {
        var left: [String] = []
        // A SIGKILL'd run's agent dies of PR_SET_PDEATHSIG: give it a moment, then it must be gone.
        _ = waitFor(3) { l.agents.allSatisfy { !$0.isAlive } && marked(l.identity).isEmpty }
        for a in l.agents where a.isAlive { left.append("agent \(a) alive") }
        for pid in marked(l.identity) { left.append("process \(pid) with \(RunRegistry.environmentKey)=\(l.identity)") }
        _ = waitFor(3) { ownNamespacesLeft(l).isEmpty }
        let ns = ownNamespacesLeft(l)
        if !ns.isEmpty { left.append("namespaces \(ns.sorted())") }
        if recordSwept, FileManager.default.fileExists(atPath: runDir + "/\(l.identity).run") { left.append("record \(l.identity).run") }
        left += partialFiles(l.dir).map { "file \($0)" }
        return left
    }

    @Test("100 kills of fuzz (linux, pytcp), conform and run with SIGINT, SIGTERM, SIGKILL at random points leave nothing behind")
    func hundredKills() throws {
        let seed = ProcessInfo.processInfo.environment["TCPSPEC_KILL_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970)
        print("kill tests: seed \(seed) (TCPSPEC_KILL_SEED=\(seed) replays these kills)")
        var rng = Rand(seed)
        let runDir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-kill-runs-\(UUID().uuidString)").path
        let root = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        #expect(try Self.rootLinks().isEmpty, "tcpspec links in the root namespace before the test")
        // 100 kills: each command 25 times; the signals in turn, so every command meets every signal.
        let signals = [SIGINT, SIGTERM, SIGKILL]
        // Half of each command's kills come at a random point after launch (0–3 s: startup, compiling, making
        // namespaces, starting an agent), half at a random point after the run is first seen at work in its
        // namespaces (0–1.5 s later: mid-round, minimizing, writing) — on a loaded machine a run may need more
        // than 3 s to get there, and those points must be covered too.
        var plan: [(Command, Int32, Double, Bool)] = []
        for (c, command) in Command.allCases.enumerated() {
            for k in 0..<25 { plan.append(k % 2 == 0 ? (command, signals[(k + c) % 3], rng.unit() * 3, false) : (command, signals[(k + c) % 3], rng.unit() * 1.5, true)) }
        }
        for i in stride(from: plan.count - 1, to: 0, by: -1) { plan.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let started = Date()
        // Three at a time: parallel runs sweep each other's dead records, never a live one's.
        let lanes = 3
        // The kill's time: fixed at launch, or (at work) set once the run is seen in its namespaces, at most 20 s on.
        var running: [(Launch, Int32, Date, Double?)] = []
        var pending = plan[...]
        var ended: [(Launch, Int32)] = []
        var tally: [String: Int] = [:]
        func finish(_ l: Launch, _ sig: Int32) throws {
            l.process.waitUntilExit()
            let killedEarly = l.process.terminationReason == .exit && l.process.terminationStatus < 128
            tally["\(l.command.rawValue) \(sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGKILL")\(killedEarly ? " (had ended)" : "")", default: 0] += 1
            if !killedEarly {
                if sig == SIGKILL || l.process.terminationReason == .uncaughtSignal {
                    // SIGINT/SIGTERM before tcpspec installed its handler (the first milliseconds) kill it outright.
                    #expect(l.process.terminationReason == .uncaughtSignal && l.process.terminationStatus == sig, "\(l.command.rawValue): \(l.stderr)")
                } else {
                    #expect(l.process.terminationStatus == 128 + sig, "\(l.command.rawValue) on signal \(sig): status \(l.process.terminationStatus)\n\(l.stderr)")
                }
            } else {
                #expect(l.process.terminationStatus <= 1, "\(l.command.rawValue) ended by itself with \(l.process.terminationStatus):\n\(l.stderr)")
            }
            // Exit and the SIGINT/SIGTERM handler remove the record themselves; a SIGKILL'd one waits for a sweep.
            let left = try Self.leftovers(l, runDir: runDir, recordSwept: sig != SIGKILL || killedEarly)
            #expect(left.isEmpty, "seed \(seed): \(l.command.rawValue) killed by \(sig): left \(left)\n\(l.stderr)")
            ended.append((l, sig))
        }
        // At work: in its namespaces and, for a userspace target, with its agent started.
        func c2(_ l: Launch) -> Bool { l.command != .fuzzPyTCP || !l.agents.isEmpty }
        while !pending.isEmpty || !running.isEmpty {
            while running.count < lanes, let (c, sig, delay, atWork) = pending.popFirst() {
                running.append(atWork ? (try Self.launch(c, runDir: runDir), sig, Date().addingTimeInterval(20), delay)
                                      : (try Self.launch(c, runDir: runDir), sig, Date().addingTimeInterval(delay), nil))
            }
            for k in running.indices {
                Self.observe(running[k].0, runDir: runDir, root: root)
                if let d = running[k].3, !running[k].0.namespaces.isEmpty, c2(running[k].0) {
                    running[k].2 = Date().addingTimeInterval(d)
                    running[k].3 = nil
                }
            }
            if let i = running.firstIndex(where: { Date() >= $0.2 }) {
                let (l, sig, _, _) = running.remove(at: i)
                Self.observe(l, runDir: runDir, root: root)
                kill(l.identity.pid, sig)
                try finish(l, sig)
            } else {
                Thread.sleep(forTimeInterval: 0.03)
            }
        }
        // The next start's sweep for the last ones: `tcpspec doctor` sweeps and records itself.
        _ = try Self.sweep(runDir: runDir)
        // Every run is dead now: not one record may remain, nor anything of any run.
        let records = (try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? []
        #expect(records.isEmpty, "records left after the sweep: \(records)")
        for (l, sig) in ended {
            let left = try Self.leftovers(l, runDir: runDir, recordSwept: true)
            #expect(left.isEmpty, "seed \(seed): \(l.command.rawValue) killed by \(sig): after the sweep, left \(left)")
        }
        let links = try Self.rootLinks()
        #expect(links.isEmpty, "tcpspec links in the root namespace: \(links)")
        #expect(ended.count == 100)
        // The runs that made namespaces were seen in them (a check that cannot see them would pass vacuously).
        let seen = Dictionary(grouping: ended.filter { !$0.0.namespaces.isEmpty }, by: { $0.0.command.rawValue }).mapValues(\.count)
        print("kill tests: runs seen in their namespaces before the kill: \(seen.sorted { $0.key < $1.key })")
        for c in Command.allCases { #expect(seen[c.rawValue, default: 0] >= 5, "\(c.rawValue): namespaces seen for only \(seen[c.rawValue, default: 0]) runs") }
        #expect(ended.filter { $0.0.command == .fuzzPyTCP && !$0.0.agents.isEmpty }.count >= 5)
        print("kill tests: seed \(seed), \(ended.count) kills in \(String(format: "%.1f", Date().timeIntervalSince(started))) s: " + tally.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        for (l, _) in ended { try? FileManager.default.removeItem(atPath: l.dir) }
        try? FileManager.default.removeItem(atPath: runDir)
    }

    @Test("a sweep removes a dead run's survivors and files, and leaves a live parallel run and its agent alone")
    func sweepSparesLiveRun() throws {
        let runDir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-kill-runs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: runDir) }
        // Run A: a live PyTCP fuzz run with its agent.
        let a = try Self.launch(.fuzzPyTCP, runDir: runDir, duration: "6s")
        defer { try? FileManager.default.removeItem(atPath: a.dir) }
        let recordA = runDir + "/\(a.identity).run"
        #expect(Self.waitFor(30) { !Self.agents(inRecord: recordA).isEmpty }, "run A never recorded its agent: \(a.stderr)")
        let agentA = try #require(Self.agents(inRecord: recordA).first)
        #expect(agentA.isAlive)
        #expect(Self.marked(a.identity) == [agentA.pid])

        // A dead run whose survivor outlived it (as an agent would if PR_SET_PDEATHSIG had failed): its
        // owner is a process that has ended, its survivor a process of this test's, marked as the run's.
        let owner = Process()
        owner.executableURL = URL(fileURLWithPath: "/bin/sleep")
        owner.arguments = ["30"]
        try owner.run()
        let ownerID = RunRegistry.Identity(pid: owner.processIdentifier, startTime: try #require(Sys.processStat(owner.processIdentifier)?.startTime))
        kill(owner.processIdentifier, SIGKILL)  // the "killed run" (a process of this test's)
        owner.waitUntilExit()
        let survivor = Process()
        survivor.executableURL = URL(fileURLWithPath: "/bin/sleep")
        survivor.arguments = ["60"]
        survivor.environment = [RunRegistry.environmentKey: "\(ownerID)"]
        try survivor.run()
        let survivorID = RunRegistry.Identity(pid: survivor.processIdentifier, startTime: try #require(Sys.processStat(survivor.processIdentifier)?.startTime))
        let tmp = a.dir + "/.report.json.\(ownerID)-1.tmp"
        try "{\"half".write(toFile: tmp, atomically: false, encoding: .utf8)
        // A recorded process that ended and whose pid may be reused: not killed (its start time differs).
        let reused = RunRegistry.Identity(pid: getpid(), startTime: 1)
        try "run \(ownerID.pid) \(ownerID.startTime) fuzz\n+process \(survivorID.pid) \(survivorID.startTime)\n+process \(reused.pid) \(reused.startTime)\n+file \(tmp)\n"
            .write(toFile: runDir + "/\(ownerID).run", atomically: true, encoding: .utf8)

        // Run B sweeps at its start.
        let bErr = try Self.sweep(runDir: runDir)
        survivor.waitUntilExit()
        #expect(survivor.terminationReason == .uncaughtSignal && survivor.terminationStatus == SIGKILL)
        #expect(bErr.contains("tcpspec: swept a killed run: run \(ownerID.pid) (fuzz): killed process \(survivorID.pid); removed \(tmp)"), "\(bErr)")
        #expect(!FileManager.default.fileExists(atPath: tmp))
        #expect(!FileManager.default.fileExists(atPath: runDir + "/\(ownerID).run"))
        // A, its record and its agent are untouched, and A ends normally (1: PyTCP diverges), removing its record.
        #expect(FileManager.default.fileExists(atPath: recordA))
        #expect(agentA.isAlive, "the sweep killed the live run's agent")
        #expect(a.process.isRunning)
        a.process.waitUntilExit()
        #expect(a.process.terminationReason == .exit && a.process.terminationStatus <= 1, "\(a.stderr)")
        #expect(!a.stderr.contains("interrupted") && !a.stderr.contains("swept"), "\(a.stderr)")
        #expect(!FileManager.default.fileExists(atPath: recordA))
        #expect(Self.waitFor(3) { !agentA.isAlive })
        #expect(try Self.leftovers(a, runDir: runDir, recordSwept: true).isEmpty)
        #expect(Self.partialFiles(a.dir).isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? []).isEmpty)
    }
}
