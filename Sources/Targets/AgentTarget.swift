import Core
import Foundation
import Link
import Spec
import Synchronization
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// The stack failed as a program (not as TCP): it exited, stopped answering, or broke the agent protocol.
/// The fuzzer keeps the running case as a finding and restarts the target.
public struct TargetFailure: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case exited = "target-crash"
        case hung = "target-hang"
        case protocolError = "target-protocol"
        case startFailed = "target-start"
    }
    public var kind: Kind
    public var detail: String
    /// The last lines the agent wrote to stderr.
    public var log: String

    public init(kind: Kind, detail: String, log: String) {
        self.kind = kind
        self.detail = detail
        self.log = log
    }

    /// Joins what failed to what the stack had been given just before, in `detail`: the signature of a failure
    /// ends here, so that one hang is one finding whichever frame brought it on.
    public static let givenSeparator = "; it had been given "

    /// The part of a detail that identifies the failure (without what the stack had been given).
    public static func identifying(_ detail: String) -> Substring {
        detail.firstRange(of: givenSeparator).map { detail[..<$0.lowerBound] } ?? detail[...]
    }

    public var description: String {
        var s = "\(kind.rawValue): \(detail)"
        if !log.isEmpty { s += "\n--- the agent's last stderr lines ---\n" + log }
        return s
    }
}

/// A userspace stack attached to a TAP/TUN device in a namespace tcpspec makes, driven through its agent
/// (docs/agent-protocol.md). Frames go through libpcap on the device exactly as on the Linux target's veth.
/// With `[link] device = "NAME"` the stack uses a device the user prepared, in tcpspec's own namespace, as it is:
/// tcpspec changes nothing on it, and injects on it only when the user allowed it (`InjectionGuard`).
public final class AgentTarget: Target, @unchecked Sendable {
    public let stack: TargetDescription
    public let interface: String
    let namespace: NamespaceThread
    let pcap: PcapLink
    public var link: FrameLink { pcap }
    public let clock: any Timekeeper
    public let testerMAC = MACAddress([0x02, 0x00, 0x00, 0x77, 0x00, 0x01])
    public var targetMAC: MACAddress { stack.mac }
    public let testerIP: IPAddress
    public let targetIP: IPAddress
    public private(set) var capabilities = Capabilities(calls: [], reportsState: false)
    /// What the agent said of itself in its hello (`stack`).
    public private(set) var stackVersion = ""
    public private(set) var starts = 0
    /// The agent's process id while it runs (it is started, and ended, by tcpspec only).
    public var agentPID: Int32? { pid > 0 ? pid : nil }
    /// Every namespace made by this process's agent targets, started or not (tests check none outlives its target).
    public static var namespacesMade: [String] { made.withLock { $0 } }
    private static let made = Mutex<[String]>([])
    /// The namespace's identity (`net:[inode]`), to check that it is gone after `close`.
    public private(set) var namespaceID = ""

    private var pid: Int32 = -1
    /// How the agent ended, once reaped: kept, so that every later question gets the same answer until a restart.
    private var ended: String?
    private var toAgent: FileDescriptor?
    private var fromAgent: FileDescriptor?
    private var logFD: FileDescriptor?
    private var buffer: [UInt8] = []
    private var nextID = 1
    private var probe = BarrierProbe()

    public var settings: [(String, String)] {
        var s: [(String, String)] = [("target", stack.name), ("stack", stackVersion), ("link", stack.link.rawValue), ("ip", "\(stack.ip.rawValue)"),
                                     ("state reports", capabilities.reportsState ? "yes" : "no (judged on segments alone)")]
        if stack.barrier == .quiet { s.append(("barrier", "quiet \(Int(stack.quietTime * 1000)) ms")) }
        if let ms = stack.userTimeoutMilliseconds { s.append(("TCP_USER_TIMEOUT", "\(ms)")) }
        if let k = stack.keepalive { s.append(("keep-alive", Self.keepaliveText(k))) }
        s += stack.settings.map { ($0.0, $0.1.hasPrefix("\"") ? String($0.1.dropFirst().dropLast()) : $0.1) }
        return s
    }

    /// A userspace stack's timers tick in its own loop (PyTCP's and lwIP's agents poll theirs every few ms) and its
    /// frames cross a TAP before the capture: the description may widen this (`timer_slack_ms`).
    public var timerMargin: TimerMargin {
        let slack = stack.timerSlack ?? 0.05
        return TimerMargin(early: slack, late: slack, lateFraction: 0.1, source: "agent: \(Int(slack * 1000)) ms either side + 1/10 of the delay late (its timer loop, the TAP, the capture)")
    }

    /// The R2 the description's application sets on every socket is the connection's, whatever profile judges it.
    public var applicationTimings: [TimingName: Timing] {
        var t = stack.userTimeoutMilliseconds.map {
            Timing.applicationR2(Double($0) / 1000, setting: "TCP_USER_TIMEOUT=\($0) ([application] user_timeout_ms of \(stack.name)'s description)")
        } ?? [:]
        if let k = stack.keepalive {
            // The agent's stack counts its probes itself (TCPSPEC_KEEPALIVE_PROBES): unlike Linux, no user timeout
            // is known to replace the count, so a stack that does is judged by the count it was given.
            t.merge(Timing.applicationKeepalive(idle: k.idle, interval: k.interval, probes: k.probes,
                                                setting: "SO_KEEPALIVE, \(Self.keepaliveText(k)) ([application] keepalive_* of \(stack.name)'s description)")) { a, _ in a }
        }
        return t
    }

    public var socketSettings: SocketSettings {
        SocketSettings(userTimeout: stack.userTimeoutMilliseconds.map { Double($0) / 1000 }, keepalive: stack.keepalive)
    }

    /// `TCP_KEEPIDLE=1000 ms, TCP_KEEPINTVL=1000 ms, TCP_KEEPCNT=3`: what the agent is asked to set, in its units.
    static func keepaliveText(_ k: KeepaliveSetting) -> String {
        "TCP_KEEPIDLE=\(k.milliseconds.idle) ms, TCP_KEEPINTVL=\(k.milliseconds.interval) ms, TCP_KEEPCNT=\(k.probes)"
    }

    public var delaysAcknowledgments: Bool { stack.delayedAcks }

    public var timersNotJudged: String? {
        stack.timersSlowed ? "\(stack.name)'s description slows its timers ([link] timers = \"slowed\", see its [settings]): they are not judged" : nil
    }

    /// Installs the stack if its description says how and it is missing, makes the namespace and device, starts
    /// the agent and waits for its hello.
    ///
    /// - Parameter clock: what the agent's deadlines and waits are measured on.
    public init(_ description: TargetDescription, clock: any Timekeeper = MonotonicClock()) throws {
        stack = description
        self.clock = clock
        // An agent that died leaves a closed pipe: writing to it must be an error here, not a signal.
        Sys.ignoreBrokenPipes()
        testerIP = description.testerAddress
        targetIP = description.targetAddress
        interface = description.device ?? "tcpspec-tap"
        try Self.installIfNeeded(description)
        let own = description.device == nil
        namespace = try NamespaceThread(name: "stack", newNamespace: own)
        let id = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/task/\(namespace.tid)/ns/net")) ?? ""
        namespaceID = own ? id : ""
        if own { Self.made.withLock { $0.append(id) } }
        let (iface, tap, mtu) = (interface, description.link == .tap, description.mtu)
        do {
            if own { try namespace.run {
                // No kernel IPv6 on the device either: no router solicitations or DAD probes to confuse the stack.
                for key in ["net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"] { try? Sys.writeSysctl(key, "1") }
                try Sys.tunCreatePersistent(iface, tap: tap)
                try? Sys.writeSysctl("net.ipv6.conf.\(iface).disable_ipv6", "1")
                let nl = try Sys.rtnlOpen()
                defer { Sys.close(nl) }
                try Sys.linkSet(nl, try Sys.linkIndex(iface), up: true, mac: nil, mtu: Int32(mtu))
                try InjectionGuard.recordCreated(iface)
            } }
            pcap = try PcapLink(interface: iface, on: namespace, filter: "tcp and src host \(targetIP)", clock: clock)
        } catch {
            namespace.stop()
            throw error
        }
        do {
            try start()
        } catch {
            stopAgent()
            namespace.stop()
            throw error
        }
    }

    static func installIfNeeded(_ d: TargetDescription) throws {
        guard let marker = d.installed, !FileManager.default.fileExists(atPath: marker), !d.install.isEmpty else { return }
        FileHandle.standardError.write("tcpspec: installing target \(d.name): \(d.install.joined(separator: " ")) (in \(d.workingDirectory))\n".data(using: .utf8)!)
        // The installer has no PR_SET_PDEATHSIG: if this run is killed, the next run's sweep ends it (runProgram
        // records it).
        let run: ProgramRun
        do { run = try Sys.runProgram("/usr/bin/env", arguments: d.install, directory: d.workingDirectory, mergeErrors: true) } catch {
            throw TargetFailure(kind: .startFailed, detail: "\(d.file): the install command \(d.install) did not start: \(error)", log: "")
        }
        guard run.status == 0, FileManager.default.fileExists(atPath: marker) else {
            let tail = String(decoding: run.output, as: UTF8.self).split(separator: "\n").suffix(15).joined(separator: "\n")
            throw TargetFailure(kind: .startFailed, detail: "\(d.file): the install command \(d.install) failed (status \(run.status)) or did not make \(marker)", log: tail)
        }
    }

    /// The program to run: a path relative to the working directory, or a name looked up in PATH.
    func resolveProgram() throws -> String {
        let p = stack.command[0]
        if p.contains("/") {
            let abs = p.hasPrefix("/") ? p : URL(fileURLWithPath: stack.workingDirectory).appendingPathComponent(p).standardizedFileURL.path
            guard FileManager.default.isExecutableFile(atPath: abs) else {
                throw TargetFailure(kind: .startFailed, detail: "\(stack.file): the agent program \(abs) is missing or not executable\(stack.install.isEmpty ? "" : " (install: \(stack.install.joined(separator: " ")))")", log: "")
            }
            return abs
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let c = "\(dir)/\(p)"
            if FileManager.default.isExecutableFile(atPath: c) { return c }
        }
        throw TargetFailure(kind: .startFailed, detail: "\(stack.file): the agent program '\(p)' is not in PATH", log: "")
    }

    /// Starts the agent in the namespace and reads its hello.
    func start() throws {
        let program = try resolveProgram()
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TCPSPEC_") }
        for (k, v) in stack.environment { env[k] = v }
        env["TCPSPEC_AGENT_VERSION"] = "1"
        env["TCPSPEC_IFACE"] = interface
        env["TCPSPEC_LINK"] = stack.link.rawValue
        env["TCPSPEC_MAC"] = "\(stack.mac)"
        env["TCPSPEC_IP"] = "\(targetIP)"
        env["TCPSPEC_PREFIX"] = stack.ip == .v4 ? "24" : "64"
        env["TCPSPEC_MTU"] = "\(stack.mtu)"
        env["TCPSPEC_PEER_IP"] = "\(testerIP)"
        env["TCPSPEC_PEER_MAC"] = "\(testerMAC)"
        env["TCPSPEC_SETTINGS"] = stack.settingsJSON
        if let ms = stack.userTimeoutMilliseconds { env["TCPSPEC_USER_TIMEOUT_MS"] = "\(ms)" }
        if let k = stack.keepalive {
            env["TCPSPEC_KEEPALIVE_IDLE_MS"] = "\(k.milliseconds.idle)"
            env["TCPSPEC_KEEPALIVE_INTERVAL_MS"] = "\(k.milliseconds.interval)"
            env["TCPSPEC_KEEPALIVE_PROBES"] = "\(k.probes)"
        }
        // Marks the agent as this run's: a stray one can be traced to the run that started it.
        env[RunRegistry.environmentKey] = RunRegistry.marker
        let environment = env.map { "\($0.key)=\($0.value)" }.sorted()
        let args = Array(stack.command.dropFirst())
        let dir = stack.workingDirectory
        let inPipe = try Sys.pipe(), outPipe = try Sys.pipe()
        // stderr goes to a file without a name (O_TMPFILE): readable for its tail, gone with tcpspec whatever ends
        // it. Where /tmp cannot make one, a named file unlinked at once, recorded meanwhile for the sweep.
        let log: FileDescriptor
        if let fd = try? Sys.openUnnamed(in: "/tmp") {
            log = fd
        } else {
            let logPath = "/tmp/tcpspec-agent-\(RunRegistry.marker)-\(starts).log"
            let token = RunRegistry.track(file: logPath)
            defer { RunRegistry.untrack(token) }
            log = try Sys.open(logPath, .readWrite, options: [.create, .truncate], permissions: 0o600)
            Sys.unlink(logPath)
        }
        // Spawned from the namespace's thread: the agent is born in the namespace and dies with the thread.
        let spawned = Result {
            try namespace.run {
                try Sys.spawn(program, arguments: args, environment: environment, directory: dir, stdin: inPipe.read, stdout: outPipe.write, stderr: log)
            }
        }
        // Only the agent holds these ends now: its exit is then an end of file here.
        Sys.close(inPipe.read)
        Sys.close(outPipe.write)
        let child: Int32
        do {
            child = try spawned.get()
        } catch {
            for fd in [inPipe.write, outPipe.read, log] { Sys.close(fd) }
            throw TargetFailure(kind: .startFailed, detail: "\(stack.name) (\(stack.file)) did not start: \(error)", log: "")
        }
        pid = child
        ended = nil
        // Recorded for the next run's sweep, should this one be killed before it ends the agent.
        RunRegistry.track(process: child)
        toAgent = inPipe.write
        fromAgent = outPipe.read
        logFD = log
        buffer = []
        starts += 1
        let hello: [String: Any]
        do {
            guard let line = try readLine(timeout: stack.readyTimeout, waitingFor: "its hello line") else {
                clock.sleep(0.02)
                throw TargetFailure(kind: .startFailed, detail: "the agent closed its stdout before its hello (\(exitStatus() ?? "still running"))", log: logTail())
            }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TargetFailure(kind: .startFailed, detail: "the agent's first line is not a JSON object: \(line.prefix(200))", log: logTail())
            }
            hello = obj
        } catch var f as TargetFailure {
            f.kind = .startFailed
            f.detail = "\(stack.name) (\(stack.file)) did not start: \(f.detail)"
            throw f
        }
        guard hello["agent"] as? String == "tcpspec" else {
            throw TargetFailure(kind: .startFailed, detail: "the agent's hello lacks \"agent\": \"tcpspec\": \(hello)", log: logTail())
        }
        guard (hello["version"] as? Int) == 1 else {
            throw TargetFailure(kind: .startFailed, detail: "the agent speaks protocol version \(hello["version"] ?? "?"); this tcpspec speaks 1", log: logTail())
        }
        let calls = Set((hello["calls"] as? [String]) ?? [])
        let unknown = calls.subtracting(Self.protocolCalls)
        guard unknown.isEmpty else {
            throw TargetFailure(kind: .startFailed, detail: "the agent offers calls the protocol does not have: \(unknown.sorted())", log: logTail())
        }
        // An agent that ignored TCPSPEC_KEEPALIVE_* would be judged as a stack that never probes (MUST-24).
        if stack.keepalive != nil, (hello["keepalive"] as? Bool) != true {
            throw TargetFailure(kind: .startFailed, detail: "\(stack.file) sets keep-alives ([application] keepalive_*), but the agent's hello does not confirm them with \"keepalive\": true (docs/agent-protocol.md): its probes would be judged missing", log: logTail())
        }
        capabilities = Capabilities(calls: calls, reportsState: (hello["state"] as? Bool) ?? false)
        stackVersion = (hello["stack"] as? String) ?? stack.name
        // An agent that has the device open turns its carrier on: give the kernel a moment to pass frames on it
        // (its queue is activated asynchronously) before the first injection. Best effort: an agent may open
        // the device later, or a prepared device may have no reader; frames then go as they always could.
        let iface = interface
        try? namespace.run { try Sys.waitRunning(iface, timeout: 1) }
        // IFF_RUNNING can be set before frames pass (measured: 5 of 48 runs lost the first frames after the
        // hello): prove the link with the barrier probe, repeated until the stack answers one, before any step.
        if stack.barrier != .quiet { try proveLink() }
    }

    /// Injects the barrier probe until the stack answers it, a few times a second, up to the ready timeout.
    func proveLink() throws {
        let deadline = clock.now + max(2, stack.readyTimeout)
        while clock.now < deadline {
            let probe = self.probe.next(to: self)
            try pcap.inject(probe.frame)
            if BarrierProbe.frames(before: probe.seq, on: pcap, clock: clock, within: 0.2) != nil { return }
            if let st = exitStatus() { throw TargetFailure(kind: .exited, detail: "the agent \(st) before its link carried a frame", log: logTail()) }
        }
        throw TargetFailure(kind: .startFailed, detail: "frames do not pass on \(interface): the stack answered no barrier probe (a SYN to port \(BarrierProbe.targetPort)) within \(Int(max(2, stack.readyTimeout))) s of its hello; a stack that does not reset a SYN to a closed port needs barrier = \"quiet\"", log: logTail())
    }

    static let protocolCalls: Set<String> = ["listen", "accept", "connect", "send", "recv", "shutdown", "close", "abort", "release", "setsockopt"]

    /// The last lines the agent wrote to stderr.
    public func logTail(lines: Int = 20) -> String {
        guard let logFD, let size = try? Sys.size(logFD) else { return "" }
        let from = max(0, size - 8192)
        guard let tail = try? Sys.read(logFD, at: from, upTo: size - from), !tail.isEmpty else { return "" }
        return String(decoding: tail, as: UTF8.self).split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// How the agent ended, if it has: reaps it.
    func exitStatus() -> String? {
        guard pid > 0 else { return ended }
        guard let st = Sys.reap(pid) else { return nil }
        RunRegistry.untrack(process: pid)
        pid = -1
        ended = Self.describe(status: st)
        return ended
    }

    /// A wait status in words: `exited with status 7`, `killed by signal 6 (SIGABRT: Aborted, core dumped)`.
    static func describe(status st: Int32) -> String {
        let sig = st & 0x7f
        guard sig != 0 else { return "exited with status \((st >> 8) & 0xff)" }
        let names = [1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL",
                     10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS"]
        let text = strsignal(sig).map { String(cString: $0) } ?? ""
        return "killed by signal \(sig) (\(names[Int(sig)] ?? "signal \(sig)")\(text.isEmpty ? "" : ": " + text)\(st & 0x80 != 0 ? ", core dumped" : ""))"
    }

    /// One line from the agent, or nil at end of file; a hang after `timeout` seconds.
    func readLine(timeout: Double, waitingFor what: @autoclosure () -> String) throws -> String? {
        let deadline = clock.now + timeout
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            let left = deadline - clock.now
            if left <= 0 {
                stoppedAnswering = true
                throw TargetFailure(kind: .hung, detail: "the agent did not answer within \(Int(timeout * 1000)) ms, waiting for \(what())", log: logTail())
            }
            guard let fromAgent else { return nil }
            guard Sys.waitReadable(fromAgent, timeout: left) else { continue }
            // An error reads as the end of the agent's output, as end of file does.
            guard let chunk = try? Sys.read(fromAgent, upTo: 65536), !chunk.isEmpty else { return nil }
            buffer += chunk
        }
    }

    /// Sends requests (pipelined) and reads their responses in order.
    func request(_ bodies: [String]) throws -> [[String: Any]] {
        guard !bodies.isEmpty else { return [] }
        guard pid > 0 else { throw TargetFailure(kind: .exited, detail: "the agent is not running", log: logTail()) }
        let first = nextID
        var text = ""
        for b in bodies {
            text += "{\"id\":\(nextID),\(b)}\n"
            nextID += 1
        }
        do throws(SystemError) {
            guard let toAgent else { throw SystemError(operation: "write", errno: EBADF) }
            try Sys.writeAll(toAgent, Array(text.utf8))
        } catch {
            throw died("its stdin closed (\(String(cString: strerror(error.errno))))")
        }
        var out: [[String: Any]] = []
        for k in 0..<bodies.count {
            guard let line = try readLine(timeout: stack.callTimeout, waitingFor: "the answer to \(bodies[k])") else {
                throw died("its stdout closed while tcpspec waited for the answer to \(bodies[k])")
            }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], (obj["id"] as? Int) == first + k else {
                throw TargetFailure(kind: .protocolError, detail: "the agent answered \(bodies[k]) with \(line.prefix(300)) (expected a JSON object with \"id\": \(first + k))", log: logTail())
            }
            if let e = obj["error"] as? String {
                throw TargetFailure(kind: .protocolError, detail: "the agent failed on \(bodies[k]): \(e)", log: logTail())
            }
            out.append(obj)
        }
        return out
    }

    func died(_ why: String) -> TargetFailure {
        clock.sleep(0.02)
        let status = exitStatus() ?? "still running"
        return TargetFailure(kind: .exited, detail: "the agent \(status): \(why)", log: logTail())
    }

    static func body(_ c: SocketCall, _ t: Tuple) -> String {
        let conn = "\"port\":\(t.targetPort),\"peer\":\(t.testerPort)"
        switch c {
        case .listen(let b): return "\"op\":\"listen\",\(conn),\"backlog\":\(b)"
        case .connect: return "\"op\":\"connect\",\(conn)"
        case .accept: return "\"op\":\"accept\",\(conn)"
        case .send(let n): return "\"op\":\"send\",\(conn),\"n\":\(n)"
        case .recv(let n): return "\"op\":\"recv\",\(conn),\"n\":\(n)"
        case .shutdown(let h): return "\"op\":\"shutdown\",\(conn),\"how\":\"\(h.rawValue)\""
        case .close: return "\"op\":\"close\",\(conn)"
        case .abort: return "\"op\":\"abort\",\(conn)"
        case .release: return "\"op\":\"release\",\(conn)"
        case .setsockopt(let n, let v): return "\"op\":\"setsockopt\",\(conn),\"name\":\(TargetDescription.jsonString(n)),\"value\":\(v)"
        }
    }

    static func result(_ r: [String: Any]) -> CallResult {
        if let v = r["ok"] as? Int { return CallResult(value: v) }
        if let e = r["errno"] as? String { return CallResult(value: -1, errno: Errno.value(e) ?? EINVAL) }
        return CallResult(value: -1, errno: EINVAL)
    }

    /// One call, without a barrier: what it makes the stack send stays in the capture for the next barrier
    /// (as on Linux), so a case runner sees a call's segments.
    public func call(_ c: SocketCall, on tuple: Tuple) throws -> CallResult {
        if c != .release, c != .close, !capabilities.calls.contains(c.name) { return CallResult(value: -1, errno: EOPNOTSUPP) }
        return Self.result(try request([Self.body(c, tuple)])[0])
    }

    public func state(of tuple: Tuple) throws -> TCPState? { try states(of: [tuple])[tuple] ?? nil }

    public func states(of tuples: [Tuple]) throws -> [Tuple: TCPState?] {
        var out: [Tuple: TCPState?] = [:]
        guard !tuples.isEmpty else { return out }
        guard capabilities.reportsState else {
            for t in tuples { out[t] = .some(nil) }
            return out
        }
        let conns = tuples.map { "[\($0.targetPort),\($0.testerPort)]" }.joined(separator: ",")
        let r = try request(["\"op\":\"state\",\"conns\":[\(conns)]"])[0]
        guard let names = r["states"] as? [Any], names.count == tuples.count else {
            throw TargetFailure(kind: .protocolError, detail: "the agent answered a state request for \(tuples.count) connections with \(r)", log: logTail())
        }
        for (t, n) in zip(tuples, names) {
            if let s = n as? String {
                guard let state = TCPState(name: s) else {
                    throw TargetFailure(kind: .protocolError, detail: "the agent reported state '\(s)', not an RFC 9293 name (\(TCPState.allCases.map(\.rawValue).joined(separator: " ")))", log: logTail())
                }
                out[t] = state
            } else {
                out[t] = .some(nil)
            }
        }
        return out
    }

    public func inject(_ frames: [[UInt8]]) throws {
        lastInjected = frames
        for f in frames { try pcap.inject(f) }
    }

    /// The frames of the latest injection, for saying what a stack that stopped answering was given last.
    var lastInjected: [[UInt8]] = []

    /// The latest injected frames as segments (`ports P>Q F. 1:1(0) ack 1`), at most a few.
    func describeLastInjected() -> String {
        guard !lastInjected.isEmpty else { return "no frame since its previous answer" }
        let shown = lastInjected.suffix(3).map { bytes -> String in
            guard let p = try? Packet.decode(bytes, link: link.linkType) else { return "a \(bytes.count)-byte frame" }
            return "\(p.tcp.sourcePort)>\(p.tcp.destinationPort) \(Notation.format(p.tcp))"
        }
        return (lastInjected.count > 3 ? "\(lastInjected.count) frames, the last: " : lastInjected.count == 1 ? "the frame " : "the frames ") + shown.joined(separator: "; ")
    }

    public func exchange(calls: [(SocketCall, Tuple)], inject frames: [[UInt8]], states tuples: [Tuple]) throws -> Exchange {
        // A call the stack does not offer is refused here, as the sockets API would refuse an unknown operation.
        var results: [CallResult?] = calls.map { c, _ in
            switch c {
            case .release, .close: nil
            default:
                capabilities.calls.contains(c.name) ? nil : CallResult(value: -1, errno: EOPNOTSUPP)
            }
        }
        let asked = calls.indices.filter { results[$0] == nil }
        let answers = try request(asked.map { Self.body(calls[$0].0, calls[$0].1) })
        for (k, i) in asked.enumerated() { results[i] = Self.result(answers[k]) }
        if !frames.isEmpty { try inject(frames) }
        let got = try barrier()
        return Exchange(results: results.map { $0! }, frames: got, states: try states(of: tuples))
    }

    public func barrier() throws -> [Frame] {
        if stack.barrier == .quiet {
            var frames: [Frame] = []
            while let f = pcap.next(timeout: stack.quietTime) { frames.append(f) }
            return frames
        }
        let probe = self.probe.next(to: self)
        try pcap.inject(probe.frame)
        if let frames = BarrierProbe.frames(before: probe.seq, on: pcap, clock: clock, within: max(2, stack.callTimeout), gone: { exitStatus() != nil }) { return frames }
        if let st = exitStatus() { throw exited(st) }
        // It answered the probes that proved the link at its start: it stopped answering, after what it was given.
        stoppedAnswering = true
        throw TargetFailure(kind: .hung, detail: "the stack stopped answering: no reply within \(Int(max(2, stack.callTimeout))) s to the barrier probe (a SYN to port \(BarrierProbe.targetPort), which it answered before)\(TargetFailure.givenSeparator)\(describeLastInjected())", log: logTail())
    }

    public func failure() -> TargetFailure? {
        guard let st = exitStatus() else { return nil }
        return exited(st)
    }

    /// The agent's death as a failure: its wait status and, when its last stderr lines hold one, the stack's own
    /// assertion (`Assertion "insane offset!" failed at line 1430 in ./src/core/tcp_in.c`), so that one crash's
    /// signature is not another's.
    func exited(_ status: String) -> TargetFailure {
        let log = logTail()
        let assertion = log.split(separator: "\n").last { $0.contains("Assertion") || $0.contains("assertion") || $0.hasPrefix("panic") }
        return TargetFailure(kind: .exited, detail: "the agent \(status)" + (assertion.map { " after: " + $0.prefix(160) } ?? ""), log: log)
    }

    /// Ends the agent (by its pid: `quit`, then SIGTERM, then SIGKILL) and starts it again.
    public func restart() throws {
        stopAgent()
        try start()
    }

    /// The agent stopped answering: at its end it is not asked to quit (nor waited for), only signalled.
    private var stoppedAnswering = false

    func stopAgent() {
        defer { stoppedAnswering = false }
        if pid > 0 {
            if let toAgent, !stoppedAnswering {
                let q = Array("{\"id\":\(nextID),\"op\":\"quit\"}\n".utf8)
                nextID += 1
                _ = q.withUnsafeBytes { b in try? Sys.write(toAgent, b) }
            }
            var ended = false
            // The agent's process group: a shell's children, a stack's helpers, go with it.
            for (sig, wait) in [(Int32(0), stoppedAnswering ? 0 : 1.0), (SIGTERM, 1.0), (SIGKILL, 5.0)] where !ended {
                if sig != 0 { Sys.killGroup(pid, sig) }
                let end = clock.now + wait
                while clock.now < end, !ended {
                    if Sys.reap(pid) != nil { ended = true } else { clock.sleep(0.002) }
                }
            }
            // Whatever of the group outlived the agent (it ended at `quit` and left a child behind).
            Sys.killGroup(pid, SIGKILL)
            RunRegistry.untrack(process: pid)
            pid = -1
        }
        for fd in [toAgent, fromAgent, logFD].compactMap({ $0 }) { Sys.close(fd) }
        (toAgent, fromAgent, logFD) = (nil, nil, nil)
    }

    public func close() {
        stopAgent()
        if stack.device == nil { InjectionGuard.forget(namespace: namespace.netnsInode) }
        namespace.stop()
    }
}
