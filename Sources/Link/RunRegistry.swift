import Core
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where each run records what it made that could outlive it, so that the next run can remove what a killed
/// one left.
///
/// A run is named by its pid and its process start time (/proc/PID/stat field 22), so that a pid the kernel
/// has since given to another process is never taken for the run. Its record, `PID-START.run` in the run
/// directory, is an append-only list of lines, each written with one write(2), so that a run killed at any
/// point leaves a record that reads back whole:
///
/// ```
/// $ cat /run/tcpspec/runs/48112-1934411.run
/// run 48112 1934411 fuzz
/// +process 48120 1934460
/// +file /work/out/corpus/.004-established-rst.pcap.48112-1934411-3.tmp
/// -file /work/out/corpus/.004-established-rst.pcap.48112-1934411-3.tmp
/// ```
///
/// `+process` is an agent (a userspace stack) or a helper tcpspec started, with its start time; `+file` is a
/// temporary file being written (see `AtomicFile`). The owner holds an flock on its record while it runs.
/// The record goes at normal exit (atexit) and in the SIGINT/SIGTERM handler (`Sys.cleanupRun`, which also
/// kills the tracked processes and unlinks the tracked files); after SIGKILL it stays until the next run's
/// sweep (`sweep(directory:)`), which ends the recorded processes still alive *with their recorded start
/// time*, by pid, removes the files and then the record. Records of live runs (same pid and start time, or
/// whose flock is held) are never touched.
///
/// The run directory is `$TCPSPEC_RUN_DIR` if set, else `/run/tcpspec/runs`, else `/tmp/tcpspec-runs-UID`
/// (when /run is not writable, e.g. inside a user namespace); with none writable a run keeps no record.
///
/// Network namespaces need no record: tcpspec's are anonymous (no /run/netns name), so the kernel frees each,
/// with its veth and TAP devices, when the last thread, descriptor or process in it is gone. tcpspec's own
/// threads go with the process whatever ends it; the one thing that can keep a namespace alive is an agent
/// process inside it, which is why agents are recorded (and why the agent also has PR_SET_PDEATHSIG).
/// Agents carry `TCPSPEC_RUN=PID-START` in their environment, so a stray one can be traced to its run.
public final class RunRegistry: @unchecked Sendable {
    /// A process as the registry names it: pid and start time.
    public struct Identity: Hashable, Sendable, CustomStringConvertible {
        public var pid: Int32
        public var startTime: UInt64
        public init(pid: Int32, startTime: UInt64) {
            self.pid = pid
            self.startTime = startTime
        }
        public var description: String { "\(pid)-\(startTime)" }
        public init?(_ text: Substring) {
            let p = text.split(separator: "-")
            guard p.count == 2, let pid = Int32(p[0]), let st = UInt64(p[1]) else { return nil }
            self.init(pid: pid, startTime: st)
        }
        public var isAlive: Bool { Sys.isAlive(pid, startTime: startTime) }
    }

    /// This process.
    public static let me = Identity(pid: getpid(), startTime: Sys.processStat(getpid())?.startTime ?? 0)
    /// The environment variable that marks the processes a run starts (`TCPSPEC_RUN=PID-START`).
    public static let environmentKey = "TCPSPEC_RUN"
    public static var marker: String { me.description }

    /// The live processes (zombies aside: they hold nothing) carrying a run's marker in their environment,
    /// with the run it names: what a run started, whatever became of the run.
    public static func markedProcesses() -> [(pid: Int32, run: Identity)] {
        let key = Array("\(environmentKey)=".utf8)
        var out: [(pid: Int32, run: Identity)] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let st = Sys.processStat(pid), st.state != "Z",
                  let env = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { continue }
            for entry in env.split(separator: 0) where entry.starts(with: key) {
                if let id = Identity(Substring(decoding: entry.dropFirst(key.count), as: UTF8.self)) { out.append((pid, id)) }
            }
        }
        return out
    }

    /// What a sweep removed of one dead run.
    public struct Swept: Sendable, CustomStringConvertible {
        public var owner: Identity
        public var command: String
        public var killed: [Int32]
        public var removed: [String]
        public var description: String {
            let s = "run \(owner.pid) (\(command.isEmpty ? "?" : command))"
            var parts: [String] = []
            if !killed.isEmpty { parts.append("killed \(killed.count == 1 ? "process" : "processes") \(killed.map(String.init).joined(separator: ", "))") }
            if !removed.isEmpty { parts.append("removed \(removed.joined(separator: ", "))") }
            return s + (parts.isEmpty ? ": nothing left" : ": " + parts.joined(separator: "; "))
        }
    }

    public let path: String
    private let fd: FileDescriptor
    private let starts = Mutex<[Int32: UInt64]>([:])
    private static let current = Mutex<RunRegistry?>(nil)
    private static let counter = Atomic<Int>(0)

    private init(path: String, fd: FileDescriptor) {
        self.path = path
        self.fd = fd
    }

    /// The run directory (made if missing), or nil when none is writable.
    public static func directory() -> String? {
        var candidates = ["/run/tcpspec/runs", "/tmp/tcpspec-runs-\(geteuid())"]
        if let d = ProcessInfo.processInfo.environment["TCPSPEC_RUN_DIR"], !d.isEmpty { candidates = [d] }
        for d in candidates {
            try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            if access(d, W_OK | X_OK) == 0 { return d }
        }
        return nil
    }

    /// Sweeps what dead runs left, then records this run (once per process). Returns what was swept.
    @discardableResult
    public static func begin(command: String) -> [Swept] {
        guard current.withLock({ $0 == nil }), let dir = directory() else { return [] }
        let swept = sweep(directory: dir)
        let path = (dir as NSString).appendingPathComponent("\(me).run")
        // Not O_EXCL: a record of this very pid and start time can only be this process's own (from before an
        // exec into a user namespace).
        // The handler knows the path before the file exists: a signal in between cannot leave it behind.
        Sys.cleanupSetRecord(path)
        guard let fd = try? Sys.open(path, .writeOnly, options: [.create, .append], permissions: 0o644) else {
            Sys.cleanupSetRecord(nil)
            return swept
        }
        _ = Sys.tryLock(fd)
        let registry = RunRegistry(path: path, fd: fd)
        registry.append("run \(me.pid) \(me.startTime) \(command.split(whereSeparator: \.isWhitespace).joined(separator: "-"))")
        current.withLock { $0 = registry }
        // Inherited by every process the run starts (helpers too): a stray one can be traced to this run.
        setenv(environmentKey, marker, 1)
        atexit { Sys.cleanupRun() }
        return swept
    }

    /// Removes this run's record (the SIGINT/SIGTERM path does the same through `Sys.cleanupRun`).
    public static func end() {
        guard let r = current.withLock({ c -> RunRegistry? in defer { c = nil }; return c }) else { return }
        Sys.cleanupSetRecord(nil)
        Sys.unlink(r.path)
        Sys.close(r.fd)
    }

    /// The record of this run, if it keeps one.
    public static var recordPath: String? { current.withLock { $0?.path } }

    private func append(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { b in
            do { try Sys.writeAll(fd, b) } catch {}
        }
    }

    /// Records a process this run started (an agent, a helper): a sweep kills it if the run dies first.
    public static func track(process pid: Int32) {
        guard let st = Sys.processStat(pid)?.startTime else { return }
        Sys.cleanupTrack(pid: pid, startTime: st)
        guard let r = current.withLock({ $0 }) else { return }
        r.starts.withLock { $0[pid] = st }
        r.append("+process \(pid) \(st)")
    }

    /// Call before reaping the process (after the reap its pid may be another process's).
    public static func untrack(process pid: Int32) {
        Sys.cleanupUntrack(pid: pid)
        guard let r = current.withLock({ $0 }), let st = r.starts.withLock({ $0.removeValue(forKey: pid) }) else { return }
        r.append("-process \(pid) \(st)")
    }

    /// A temporary file being written.
    public struct FileToken: Sendable {
        let path: String
        let slot: Int32
    }

    public static func track(file path: String) -> FileToken {
        let slot = Sys.cleanupTrack(file: path)
        current.withLock { $0 }?.append("+file \(path)")
        return FileToken(path: path, slot: slot)
    }

    public static func untrack(_ token: FileToken) {
        current.withLock { $0 }?.append("-file \(token.path)")
        Sys.cleanupUntrack(slot: token.slot)
    }

    /// A number unique in this process (for temporary names).
    static func next() -> Int { counter.add(1, ordering: .relaxed).newValue }

    /// Removes what dead runs recorded in `directory`: their processes still alive with the recorded start
    /// time (SIGKILL, by pid), their files, then their records. Live runs' records are left alone.
    public static func sweep(directory: String) -> [Swept] {
        var out: [Swept] = []
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        for name in names where name.hasSuffix(".run") {
            guard let owner = Identity(name.dropLast(4)), owner != me, !owner.isAlive else { continue }
            let path = (directory as NSString).appendingPathComponent(name)
            guard let fd = try? Sys.openReadWrite(path) else { continue }
            defer { Sys.close(fd) }
            // Held by the owner while it runs, or by another run sweeping this record right now.
            guard Sys.tryLock(fd) else { continue }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            var command = ""
            var processes: [Identity] = [], files: [String] = []
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ", maxSplits: 1)
                guard f.count == 2 else { continue }
                let rest = String(f[1])
                switch f[0] {
                case "run": command = rest.split(separator: " ").dropFirst(2).first.map(String.init) ?? ""
                case "+process", "-process":
                    let p = rest.split(separator: " ")
                    guard p.count == 2, let pid = Int32(p[0]), let st = UInt64(p[1]) else { continue }
                    let id = Identity(pid: pid, startTime: st)
                    if f[0] == "+process" { processes.append(id) } else { processes.removeAll { $0 == id } }
                case "+file": files.append(rest)
                case "-file": files.removeAll { $0 == rest }
                default: continue
                }
            }
            var killed: [Int32] = []
            for p in processes where p.isAlive {
                Sys.killGroup(p.pid, SIGKILL)
                Sys.kill(p.pid, SIGKILL)
                killed.append(p.pid)
            }
            // What they started that outlived them (a shell's `sleep`, orphaned to init): it carries the dead run's
            // marker in its environment, inherited from the agent.
            for m in markedProcesses() where m.run == owner && !killed.contains(m.pid) {
                Sys.kill(m.pid, SIGKILL)
                killed.append(m.pid)
                processes.append(Identity(pid: m.pid, startTime: Sys.processStat(m.pid)?.startTime ?? 0))
            }
            // Wait for them to be gone (not their parent's to reap: the dead run's orphans go to init).
            let deadline = Date().addingTimeInterval(2)
            while processes.contains(where: \.isAlive), Date() < deadline { usleep(5000) }
            let removed = files.filter { Sys.unlink($0) }
            Sys.unlink(path)
            out.append(Swept(owner: owner, command: command, killed: killed, removed: removed))
        }
        return out
    }
}

/// Writes a file whole or not at all: into a temporary file in the same directory (named after the run and
/// recorded in its `RunRegistry` record), renamed over the destination when complete. A run killed mid-write
/// leaves the old file or none, never half a case or report; the temporary is removed by the signal handler or
/// the next run's sweep.
///
/// ```
/// try AtomicFile.write(Array(text.utf8), to: "out/conform/report.json")
/// // meanwhile: out/conform/.report.json.48112-1934411-7.tmp
/// ```
public enum AtomicFile {
    public static func write(_ bytes: some Collection<UInt8>, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = (dir as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).\(RunRegistry.marker)-\(RunRegistry.next()).tmp")
        let token = RunRegistry.track(file: tmp)
        defer { RunRegistry.untrack(token) }
        let fd = try Sys.cleanupCreate(tmp, mode: 0o666)
        // Not a typed-throws closure around writeAll: Swift 6.3.1's IRGen crashes on that reabstraction.
        let failure = Array(bytes).withUnsafeBytes { b -> (any Error)? in
            do { try Sys.writeAll(fd, b); return nil } catch { return error }
        }
        if let failure {
            Sys.close(fd)
            Sys.unlink(tmp)
            throw failure
        }
        Sys.close(fd)
        do { try Sys.rename(tmp, path) } catch {
            Sys.unlink(tmp)
            throw error
        }
    }

    public static func write(_ text: String, to path: String) throws { try write(Array(text.utf8), to: path) }
}
