import Core
import CNetShim
import Foundation
import Link
import Spec
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// The local Linux kernel in a network namespace tcpspec makes (see `Topology`). Application calls run on the
/// target namespace's thread; the true TCP state comes from NETLINK_SOCK_DIAG in that namespace.
public final class LinuxTarget: Target, @unchecked Sendable {
    public let topology: Topology
    public let pcap: PcapLink
    public var link: FrameLink { pcap }
    public let clock: any Timekeeper
    /// Each connection's sockets. Only the target namespace thread touches this.
    private var table: SocketTable
    private var diagFD: FileDescriptor?
    private var probe = BarrierProbe()

    public var capabilities: Capabilities {
        Capabilities(calls: ["listen", "connect", "accept", "send", "recv", "shutdown", "close", "abort", "setsockopt"], reportsState: true)
    }
    public var testerMAC: MACAddress { topology.testerMAC }
    public var targetMAC: MACAddress { topology.targetMAC }
    public var testerIP: IPAddress { topology.testerIP }
    public var targetIP: IPAddress { topology.targetIP }
    public var delaysAcknowledgments: Bool { topology.configuration.delayedAcks }
    public var settings: [(String, String)] {
        [("target", "linux"), ("kernel", LinuxTarget.kernelRelease), ("ip", "\(topology.configuration.ip.rawValue)")] + topology.sysctls
            + (topology.configuration.userTimeoutMilliseconds.map { [("TCP_USER_TIMEOUT", "\($0)")] } ?? [])
            + (topology.configuration.keepalive.map { k in
                [("SO_KEEPALIVE", "1"), ("TCP_KEEPIDLE", "\(Int(k.idle.rounded()))"), ("TCP_KEEPINTVL", "\(Int(k.interval.rounded()))"), ("TCP_KEEPCNT", "\(k.probes)")]
            } ?? [])
    }

    /// How many keep-alive probes Linux leaves unanswered before it resets: TCP_KEEPCNT, unless TCP_USER_TIMEOUT
    /// is set, which replaces it — the first expiry, with a probe out, at which the peer has been silent for the
    /// user timeout (tcp_keepalive_timer: "elapsed >= msecs_to_jiffies(icsk->icsk_user_timeout) &&
    /// icsk->icsk_probes_out > 0"), probes going at the idle time and each interval after.
    public static func keepaliveProbes(_ k: KeepaliveSetting, userTimeoutMilliseconds: Int32?) -> Int {
        guard let ms = userTimeoutMilliseconds else { return k.probes }
        let idle = k.idle.rounded(), interval = max(1, k.interval.rounded())
        return max(1, Int(((Double(ms) / 1000 - idle) / interval).rounded(.up)))
    }

    public var socketSettings: SocketSettings {
        let c = topology.configuration
        return SocketSettings(userTimeout: c.userTimeoutMilliseconds.map { Double($0) / 1000 }, keepalive: c.keepalive)
    }

    /// The application's R2 (TCP_USER_TIMEOUT on every socket) is the connection's, whatever profile judges it.
    public var applicationTimings: [TimingName: Timing] {
        // From the whole milliseconds the socket was given, not the duration asked for: the kernel's R2 is those.
        let c = topology.configuration
        var t = c.userTimeoutMilliseconds.map { Timing.applicationR2(Double($0) / 1000, setting: "TCP_USER_TIMEOUT=\($0)") } ?? [:]
        if let k = c.keepalive {
            let n = Self.keepaliveProbes(k, userTimeoutMilliseconds: c.userTimeoutMilliseconds)
            let setting = "SO_KEEPALIVE, TCP_KEEPIDLE=\(Int(k.idle.rounded())), TCP_KEEPINTVL=\(Int(k.interval.rounded())), TCP_KEEPCNT=\(k.probes)"
                + (c.userTimeoutMilliseconds == nil ? "" : " (TCP_USER_TIMEOUT replaces the count: \(n))")
            t.merge(Timing.applicationKeepalive(idle: k.idle.rounded(), interval: k.interval.rounded(), probes: n, setting: setting)) { a, _ in a }
        }
        return t
    }

    public static var kernelRelease: String { Sys.kernelRelease() }

    /// `net.ipv4.tcp_rto_min_us`, `tcp_rto_max_ms` and `tcp_fin_timeout` set away from the kernel's defaults
    /// (200 ms, 120 s, 60 s) are the linux profile's `rto.min`, `rto.max` and `fin-timeout` for this run.
    public var timingSettings: (profile: String, timings: [TimingName: Timing])? {
        var t: [TimingName: Timing] = [:]
        for (k, v) in topology.sysctls {
            guard let n = Double(v.trimmingCharacters(in: .whitespaces)) else { continue }
            if k == "net.ipv4.tcp_rto_min_us", n != 200_000 {
                t[.rtoMin] = Timing(lower: n / 1e6, upper: n / 1e6, citation: "target setting net.ipv4.tcp_rto_min_us=\(v) (tcp_rto_min_us)")
            }
            if k == "net.ipv4.tcp_fin_timeout", n != 60 {
                t[.finTimeout] = Timing(lower: n, upper: n, citation: "target setting net.ipv4.tcp_fin_timeout=\(v) (tcp_fin_time)")
            }
            if k == "net.ipv4.tcp_rto_max_ms", n != 120_000 {
                t[.rtoMax] = Timing(lower: n / 1e3, upper: n / 1e3, citation: "target setting net.ipv4.tcp_rto_max_ms=\(v) (tcp_rto_max)")
            }
        }
        return ("linux", t)
    }

    /// The target namespace's `net.ipv4.tcp_orphan_retries` (1: an orphan ends after one retransmission).
    public var orphanRetries: Int? {
        // An application's TCP_USER_TIMEOUT replaces the orphan's retry count (tcp_write_timeout passes it to
        // retransmits_timed_out): the model's user timer then says when the orphan ends.
        guard topology.configuration.userTimeout == nil else { return nil }
        return topology.sysctls.first { $0.0 == "net.ipv4.tcp_orphan_retries" }.flatMap { Int($0.1.trimmingCharacters(in: .whitespaces)) }
    }

    /// The kernel's timers run on jiffies (at most 10 ms at HZ=100) and the timer wheel fires a timer up to 1/8 of
    /// its delay late (its coarser levels' granularity, kernel/time/timer.c); the tester's own reply delay (which
    /// the kernel adds to its RTT sample, hence to the RTO) and the capture add a few milliseconds.
    public var timerMargin: TimerMargin {
        TimerMargin(early: 0.010, late: 0.030, lateFraction: 0.125, source: "Linux: a jiffy early, 1/8 of the delay + 30 ms late (timer wheel, RTT sample, capture)")
    }

    /// - Parameters:
    ///   - sockets: the socket calls the application side makes (the kernel's; a test may pass its own).
    ///   - clock: what deadlines and waits are measured on.
    public init(_ configuration: Topology.Configuration = .init(), sockets: any SocketSystem = Sys.sockets, clock: any Timekeeper = MonotonicClock()) throws {
        topology = try Topology(configuration)
        self.clock = clock
        table = SocketTable(system: sockets, version: configuration.ip, targetIP: topology.targetIP, testerIP: topology.testerIP,
                            userTimeout: configuration.userTimeoutMilliseconds, keepalive: configuration.keepalive)
        do {
            // Only what the target sends: TCP from its address (the tester's own injections are outgoing anyway).
            pcap = try PcapLink(interface: topology.testerInterface, on: topology.tester, filter: "tcp and src host \(topology.targetIP)", clock: clock)
            diagFD = try topology.target.run { try Sys.diagOpen() }
            try awaitReady()
        } catch {
            topology.close()
            throw error
        }
        Sys.ignoreBrokenPipes()
    }

    public func close() {
        try? topology.target.run { [self] in
            table.closeAll()
            if let diagFD { Sys.close(diagFD) }
            diagFD = nil
        }
        topology.close()
    }

    /// Frames injected between yields (see `exchange`).
    static let burst = 32

    public func inject(_ frames: [[UInt8]]) throws {
        // From the target's (pinned) thread, so that frames and the stack's own sends share one CPU's order.
        try topology.target.run { [self] in try injectYielding(frames) }
    }

    /// Injects from the target's thread, yielding every `Self.burst` frames. The backlog a veth feeds holds 1,000
    /// frames per CPU (net.core.netdev_max_backlog, global: not tcpspec's to change); injected in one burst from
    /// this pinned thread while softirqs wait for ksoftirqd on the same CPU, a large round overflowed it (frames
    /// and replies lost: measured 10,136 drops in a 60 s run). A yield gives ksoftirqd the CPU; whether that
    /// drains it is not established (2,144 and 22,676 drops in two runs with it).
    private func injectYielding(_ frames: [[UInt8]]) throws {
        for (i, f) in frames.enumerated() {
            try pcap.inject(f)
            if i % Self.burst == Self.burst - 1 { Sys.yieldCPU() }
        }
    }

    /// The whole round on the target's thread: no thread hop per call, one for everything.
    public func exchange(calls: [(SocketCall, Tuple)], inject frames: [[UInt8]], states tuples: [Tuple]) throws -> Exchange {
        let probe = self.probe.next(to: self)
        // One hop onto the target's thread for the whole round: calls, frames, barrier, then the states.
        return try topology.target.run { [self] () -> Exchange in
            let results = calls.map { c, t in table.perform(c, on: t) }
            try injectYielding(frames)
            try pcap.inject(probe.frame)
            let got = try awaitProbe(probe, within: 2)
            return Exchange(results: results, frames: got, states: try lookupStates(tuples))
        }
    }

    /// Reads captured frames until the probe's reply; returns the frames before it.
    private func awaitProbe(_ probe: (seq: UInt32, frame: [UInt8]), within: Double) throws -> [Frame] {
        guard let frames = BarrierProbe.frames(before: probe.seq, on: pcap, clock: clock, within: within, resend: { [pcap] in try pcap.inject(probe.frame) }) else {
            throw PcapError(description: "the barrier probe was not answered within \(within) s (the target namespace is not processing frames)")
        }
        return frames
    }

    /// Ready once a probe is answered: a frame crossed the wire to the target's kernel and its reply came back
    /// to the capture. The links are up and running before this (`Topology`); this proves the whole path, so
    /// that a case's first segment (a connect's SYN, say) cannot be the one lost to a path still settling.
    private func awaitReady() throws {
        for _ in 0..<50 {
            if (try? barrier(within: 0.1)) != nil { return }
        }
        throw PcapError(description: "the target namespace answered none of 50 probes in 5 s (it is not processing frames)")
    }

    public func barrier() throws -> [Frame] { try barrier(within: 2) }

    private func barrier(within: Double) throws -> [Frame] {
        let probe = self.probe.next(to: self)
        try inject([probe.frame])
        return try awaitProbe(probe, within: within)
    }

    private var family: Int32 { topology.configuration.ip == .v4 ? AF_INET : AF_INET6 }

    public func call(_ c: SocketCall, on tuple: Tuple) throws -> CallResult {
        try topology.target.run { [self] in table.perform(c, on: tuple) }
    }

    public func state(of tuple: Tuple) throws -> TCPState? {
        try states(of: [tuple])[tuple] ?? nil
    }

    /// The connections' states from sock_diag: for each 4-tuple the socket the kernel would deliver its segments
    /// to: the connection (or its time-wait or request socket); with none, the port's listener (LISTEN); else
    /// CLOSED. One exact lookup each, so the cost does not grow with the sockets earlier cases left behind.
    public func states(of tuples: [Tuple]) throws -> [Tuple: TCPState?] {
        try topology.target.run { [self] in try lookupStates(tuples) }
    }

    /// The lookups themselves, on the target's thread (in the target's namespace).
    private func lookupStates(_ tuples: [Tuple]) throws -> [Tuple: TCPState?] {
        let (fam, tip, xip) = (family, targetIP.bytes, testerIP.bytes)
        var out: [Tuple: TCPState?] = [:]
        for t in tuples {
            guard let diag = diagFD else { throw SystemError(operation: "sock_diag lookup", errno: EBADF) }
            if let s = try Sys.tcpLookup(diag, family: fam, src: tip, sport: t.targetPort, dst: xip, dport: t.testerPort) {
                out[t] = .some(TCPState.fromLinux(s.state))
            } else {
                out[t] = .closed
            }
        }
        return out
    }
}
