import Core
import Foundation
import Wire
#if canImport(Glibc)
import Glibc
#endif

public enum IPVersion: Int, Sendable, CaseIterable {
    case v4 = 4, v6 = 6

    /// The addresses every target uses: the tester's and the stack's, from the documentation ranges.
    public var testerAddress: IPAddress { self == .v4 ? IPAddress("192.0.2.1")! : IPAddress("2001:db8::1")! }
    public var targetAddress: IPAddress { self == .v4 ? IPAddress("192.0.2.2")! : IPAddress("2001:db8::2")! }
}

/// The embedded default target's wiring: a tester namespace and a target namespace joined by a veth pair.
/// Only the target namespace runs a TCP stack under test; the tester side has no address (no kernel answers for
/// the tester) and speaks through libpcap. Addresses are from 192.0.2.0/24 and 2001:db8::/32 only; static
/// neighbour entries avoid ARP and neighbour discovery. Nothing is created in the root namespace.
///
/// Both namespaces are anonymous (see `NamespaceThread`): they vanish with the process, whatever ends it, so
/// parallel runs never collide and no killed run leaves a namespace or link behind.
public final class Topology: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var ip: IPVersion = .v4
        /// Target-namespace sysctls, applied over the defaults chosen for determinism.
        public var sysctls: [String: String] = [:]
        /// TCP_USER_TIMEOUT (seconds) the application sets on every socket, its R2 (RFC 9293 §3.8.3 MUST-21); nil
        /// leaves the kernel's (tcp_retries2: about 15 minutes). The default ends a connection whose segment goes
        /// unacknowledged within 3 s of its first retransmission: judged, and no orphan lingers for minutes.
        public var userTimeout: Double? = Configuration.defaultUserTimeout
        public static let defaultUserTimeout = 3.0
        /// `userTimeout` as TCP_USER_TIMEOUT takes it: whole milliseconds.
        public var userTimeoutMilliseconds: Int32? { userTimeout.map { Int32(($0 * 1000).rounded()) } }
        /// SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT (whole seconds) on every socket; nil: off,
        /// the default RFC 9293 §3.8.4 MUST-25 asks for.
        public var keepalive: KeepaliveSetting?
        /// The stack delays its ACKs as it does by default (the route without `quickack`): the ACK of text waits for
        /// its delayed-ACK timer (RFC 9293 §3.8.6.3), judged against `timing delayed-ack`. Off: it acknowledges at
        /// once, so that every reply follows its input.
        public var delayedAcks = false
        public init(ip: IPVersion = .v4, sysctls: [String: String] = [:], userTimeout: Double? = Configuration.defaultUserTimeout,
                    keepalive: KeepaliveSetting? = nil, delayedAcks: Bool = false) {
            self.ip = ip
            self.sysctls = sysctls
            self.userTimeout = userTimeout
            self.keepalive = keepalive
            self.delayedAcks = delayedAcks
        }

        /// These with a case's options over them (`options` of a parsed case): `ip`, `sysctl net.KEY`, and the
        /// application's socket settings it recorded (`user-timeout`, `keepalive`), as `tcpspec run` applies them.
        public func applying(caseOptions options: [String: String]) -> Configuration {
            var c = self
            if options["ip"] == "6" { c.ip = .v6 } else if options["ip"] == "4" { c.ip = .v4 }
            for (k, v) in options where k.hasPrefix("sysctl ") { c.sysctls[String(k.dropFirst(7))] = v }
            let recorded = SocketSettings.fromCase(options)
            if let u = recorded.userTimeout { c.userTimeout = u }
            if let k = recorded.keepalive { c.keepalive = k }
            if let d = options["delayed-acks"] { c.delayedAcks = d == "on" }
            return c
        }
    }

    /// Chosen for determinism; every value is recorded with each result.
    public static let defaultSysctls: [(String, String)] = [
        ("net.ipv4.tcp_challenge_ack_limit", "2147483647"),  // RFC 5961 §7 throttling: off, so every challenge ACK is seen
        ("net.ipv4.tcp_invalid_ratelimit", "0"),             // out-of-window duplicate ACKs are not rate limited
        ("net.ipv4.tcp_syncookies", "0"),                    // a real SYN-RECEIVED, never a cookie
        ("net.ipv4.tcp_rfc1337", "0"),                       // Linux default: RST in TIME-WAIT closes
        ("net.ipv4.tcp_timestamps", "1"),
        ("net.ipv4.tcp_sack", "1"),
        ("net.ipv4.tcp_window_scaling", "1"),
        ("net.ipv4.tcp_ecn", "2"),
        ("net.ipv4.tcp_autocorking", "0"),                   // send() goes out when asked, not when the stack prefers
        ("net.ipv4.tcp_early_retrans", "0"),                 // no tail loss probes: no segment the tester did not cause
        // An orphaned FIN-WAIT-2 lasts 4 s instead of 60 (the linux profile's fin-timeout follows the setting): its
        // end is judged within a wait's limit (5 s with the timer's margin), and fewer minisockets pile up in a
        // long run. Still above 3.5 RTO before any RTT sample (tcp_fin_time), so the setting alone decides.
        ("net.ipv4.tcp_fin_timeout", "4"),
        // No RTT cached per destination across connections: each connection's first RTO is its own (an RTT
        // cached from an earlier case would replace RFC 6298 §5.7's 3 s after a SYN timeout, tcp_init_metrics).
        ("net.ipv4.tcp_no_metrics_save", "1"),
        // A connection a case closed and left with its FIN unacknowledged is an orphan until its retransmissions
        // run out: minutes by default. Orphans are counted host-wide against tcp_max_orphans (131072 here), and
        // past it Linux resets on close ("too many orphaned sockets"): a 60 s run at 5,000 cases/s got there and
        // saw resets no rule explains. One retry ends an orphan within two RTOs (about 3 s).
        ("net.ipv4.tcp_orphan_retries", "1"),
        ("net.ipv4.tcp_max_syn_backlog", "4096"),
        // A receive buffer small enough that the window never outgrows the 65535 an unscaled header can state:
        // otherwise Linux accepts up to a window it cannot advertise (Corpus/linux/README.md) and the edge the
        // oracle must judge against is hidden.
        ("net.ipv4.tcp_rmem", "4096 32768 32768"),
    ]

    public let configuration: Configuration
    public let tester: NamespaceThread
    public let target: NamespaceThread
    public let testerInterface = "tcpspec-tester"
    public let targetInterface = "tcpspec-target"
    public let testerMAC: MACAddress
    public let targetMAC: MACAddress
    public let testerIP: IPAddress
    public let targetIP: IPAddress
    /// The target namespace's sysctls as read back after setting them.
    public private(set) var sysctls: [(String, String)] = []

    public init(_ configuration: Configuration = .init()) throws {
        self.configuration = configuration
        let seed = UInt32(truncatingIfNeeded: getpid()) &* 2654435761
        testerMAC = .local(seed & 0xFFFF_FF00 | 1)
        targetMAC = .local(seed & 0xFFFF_FF00 | 2)
        testerIP = configuration.ip.testerAddress
        targetIP = configuration.ip.targetAddress
        tester = try NamespaceThread(name: "tester", newNamespace: true)
        do {
            target = try NamespaceThread(name: "target", newNamespace: true)
        } catch {
            tester.stop()
            throw error
        }
        do {
            try wire()
        } catch {
            close()
            throw error
        }
    }

    private func wire() throws {
        let (testerIf, targetIf, testerMAC, targetMAC) = (testerInterface, targetInterface, testerMAC, targetMAC)
        let (testerIP, targetIP, ip, delayedAcks) = (testerIP, targetIP, configuration.ip, configuration.delayedAcks)
        // IPv6 on the tester side would send router solicitations and DAD probes onto the wire.
        try tester.run {
            for key in ["net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"] { try? Sys.writeSysctl(key, "1") }
        }
        let testerNetns = tester.netnsFD
        var requested = Topology.defaultSysctls
        for (k, v) in configuration.sysctls.sorted(by: { $0.key < $1.key }) {
            if let i = requested.firstIndex(where: { $0.0 == k }) { requested[i].1 = v } else { requested.append((k, v)) }
        }
        let applied: [(String, String)] = try target.run {
            if ip == .v4 {
                for key in ["net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"] { try? Sys.writeSysctl(key, "1") }
            } else {
                // An address without DAD, no link-local address, no solicitations: a quiet wire.
                for (k, v) in [("accept_dad", "0"), ("dad_transmits", "0"), ("router_solicitations", "0"), ("addr_gen_mode", "1")] {
                    try? Sys.writeSysctl("net.ipv6.conf.default.\(k)", v)
                }
            }
            var out: [(String, String)] = []
            for (k, v) in requested {
                try Sys.writeSysctl(k, v)
                out.append((k, Sys.readSysctl(k) ?? v))
            }
            let nl = try Sys.rtnlOpen()
            defer { Sys.close(nl) }
            try Sys.vethCreate(nl, targetIf, peer: testerIf, peerNetns: testerNetns)
            try InjectionGuard.recordCreated(targetIf)
            let idx = try Sys.linkIndex(targetIf)
            // Checksums computed, segments cut, by the stack itself: the capture then sees the true wire.
            try Sys.offloadsOff(targetIf)
            try Sys.linkSet(nl, idx, up: false, mac: targetMAC.array)
            try Sys.linkSet(nl, idx, up: true, mac: nil)
            try Sys.linkSet(nl, try Sys.linkIndex("lo"), up: true, mac: nil)
            let family = ip == .v4 ? AF_INET : AF_INET6
            try Sys.addrAdd(nl, idx, family: family, address: targetIP.bytes, prefix: ip == .v4 ? 24 : 64)
            try Sys.neighAdd(nl, idx, family: family, address: testerIP.bytes, mac: testerMAC.array)
            // Acknowledge at once: no delayed ACKs, so every reply is caused by the input just before it (unless the
            // run judges delayed ACKs).
            if delayedAcks {
                out.append(("route quickack", "0"))
            } else {
                let net = ip == .v4 ? [UInt8](targetIP.bytes.prefix(3)) + [0] : [UInt8](targetIP.bytes.prefix(8)) + [UInt8](repeating: 0, count: 8)
                try Sys.routeQuickAck(nl, family: family, prefix: net, length: ip == .v4 ? 24 : 64, ifindex: idx)
                out.append(("route quickack", "1"))
            }
            // Everything the target does (injected frames, the stack's replies, the application's calls) runs
            // on one CPU, so frames are processed and captured in the order they were sent.
            let cpu = Int32(max(0, ProcessInfo.processInfo.activeProcessorCount - 1))
            try Sys.pinCPU(cpu)
            out.append(("target cpu", "\(cpu)"))
            return out
        }
        sysctls = applied
        try tester.run {
            let nl = try Sys.rtnlOpen()
            defer { Sys.close(nl) }
            // The peer end was made in this namespace by the veth creation above: the injection link opens on it.
            try InjectionGuard.recordCreated(testerIf)
            let idx = try Sys.linkIndex(testerIf)
            try Sys.offloadsOff(testerIf)
            try Sys.linkSet(nl, idx, up: false, mac: testerMAC.array)
            try Sys.linkSet(nl, idx, up: true, mac: nil)
        }
        // Both ends are up: ready only once each passes frames (else the first SYN may be dropped).
        try tester.run { try Sys.waitRunning(testerIf) }
        try target.run { try Sys.waitRunning(targetIf) }
    }

    /// Ends both namespace threads; the kernel then frees the namespaces and the veth pair.
    public func close() {
        for t in [tester, target] { InjectionGuard.forget(namespace: t.netnsInode) }
        tester.stop()
        target.stop()
    }

    deinit { close() }
}
