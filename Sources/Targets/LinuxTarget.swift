import Core
import CNetShim
import Foundation
import Link
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
    /// Each connection's sockets: its listener (passive opens) and the connection itself. Only the target
    /// namespace thread touches this.
    private struct Sockets {
        var listenFD: Int32 = -1
        var connFD: Int32 = -1
    }
    private var sockets: [Tuple: Sockets] = [:]
    private var diagFD: Int32 = -1
    private var probeSeq: UInt32 = 1
    /// The probe that ends a barrier: a SYN from a port no connection uses to the discard port, where nobody
    /// listens: the kernel answers it with a RST,ACK.
    static let probeTesterPort: UInt16 = 1
    static let probeTargetPort: UInt16 = 9

    public var capabilities: Capabilities {
        Capabilities(calls: ["listen", "connect", "accept", "send", "recv", "shutdown", "close", "abort", "setsockopt"], reportsState: true)
    }
    public var testerMAC: MACAddress { topology.testerMAC }
    public var targetMAC: MACAddress { topology.targetMAC }
    public var testerIP: IPAddress { topology.testerIP }
    public var targetIP: IPAddress { topology.targetIP }
    public var settings: [(String, String)] {
        [("target", "linux"), ("kernel", LinuxTarget.kernelRelease), ("ip", "\(topology.configuration.ip.rawValue)")] + topology.sysctls
    }

    public static var kernelRelease: String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    public init(_ configuration: Topology.Configuration = .init()) throws {
        topology = try Topology(configuration)
        do {
            // Only what the target sends: TCP from its address (the tester's own injections are outgoing anyway).
            pcap = try PcapLink(interface: topology.testerInterface, on: topology.tester, filter: "tcp and src host \(topology.targetIP)")
            diagFD = try topology.target.run { try Sys.diagOpen() }
            try awaitReady()
        } catch {
            topology.close()
            throw error
        }
        signal(SIGPIPE, SIG_IGN)
    }

    public func close() {
        try? topology.target.run { [self] in
            for s in sockets.values {
                if s.listenFD >= 0 { Sys.close(s.listenFD) }
                if s.connFD >= 0 { Sys.close(s.connFD) }
            }
            sockets.removeAll()
            if diagFD >= 0 { Sys.close(diagFD) }
            diagFD = -1
        }
        topology.close()
    }

    public func inject(_ frames: [[UInt8]]) throws {
        // From the target's (pinned) thread, so that frames and the stack's own sends share one CPU's order.
        try topology.target.run { [pcap] in for f in frames { try pcap.inject(f) } }
    }

    /// The whole round on the target's thread: no thread hop per call, one for everything.
    public func exchange(calls: [(SocketCall, Tuple)], inject frames: [[UInt8]], states tuples: [Tuple]) throws -> Exchange {
        probeSeq &+= 1
        let seq = probeSeq
        let probe = self.probe(seq)
        let (results, got) = try topology.target.run { [self] () -> ([CallResult], [Frame]) in
            var results: [CallResult] = []
            for (c, t) in calls {
                var s = sockets[t] ?? Sockets()
                results.append(perform(c, t, &s))
                if s.listenFD < 0 && s.connFD < 0 { sockets[t] = nil } else { sockets[t] = s }
            }
            for f in frames { try pcap.inject(f) }
            try pcap.inject(probe)
            return (results, try awaitProbe(seq, within: 2))
        }
        return Exchange(results: results, frames: got, states: try states(of: tuples))
    }

    /// Reads captured frames until the probe's reply; returns the frames before it.
    private func awaitProbe(_ seq: UInt32, within: Double) throws -> [Frame] {
        var frames: [Frame] = []
        let deadline = PcapLink.now + within
        while PcapLink.now < deadline {
            guard let f = pcap.next(timeout: deadline - PcapLink.now) else { break }
            if let p = try? Packet.decode(f.bytes, link: pcap.linkType), p.tcp.destinationPort == Self.probeTesterPort, p.tcp.sourcePort == Self.probeTargetPort {
                if p.tcp.ack == seq &+ 1 { return frames }
                continue  // a late reply to an earlier probe
            }
            frames.append(f)
        }
        throw PcapError(description: "the barrier probe was not answered within \(within) s (the target namespace is not processing frames)")
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
        probeSeq &+= 1
        let seq = probeSeq
        try inject([probe(seq)])
        return try awaitProbe(seq, within: within)
    }

    /// The barrier probe: a SYN to a closed port of the target, answered by a RST acknowledging `seq`.
    private func probe(_ seq: UInt32) -> [UInt8] {
        frame(TCPHeader(sourcePort: Self.probeTesterPort, destinationPort: Self.probeTargetPort, seq: seq, flags: .syn)).encode()
    }

    private var family: Int32 { topology.configuration.ip == .v4 ? AF_INET : AF_INET6 }

    private func withSockaddr<T>(_ ip: IPAddress, _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        switch ip {
        case .v4(let a):
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            sa.sin_addr.s_addr = a.bigEndian
            return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case .v6(let b):
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: b) }
            return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
    }

    /// A non-blocking socket bound to the target's address and port, Nagle off (a send goes out when asked).
    private func boundSocket(_ targetPort: UInt16) -> (Int32, Int32) {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return (-1, errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withSockaddr(targetIP, targetPort) { bind(fd, $0, $1) }
        if rc < 0 {
            let e = errno
            Glibc.close(fd)
            return (-1, e)
        }
        return (fd, 0)
    }

    public func call(_ c: SocketCall, on tuple: Tuple) throws -> CallResult {
        try topology.target.run { [self] in
            var s = sockets[tuple] ?? Sockets()
            let r = perform(c, tuple, &s)
            if s.listenFD < 0 && s.connFD < 0 { sockets[tuple] = nil } else { sockets[tuple] = s }
            return r
        }
    }

    private func perform(_ c: SocketCall, _ tuple: Tuple, _ s: inout Sockets) -> CallResult {
        func result(_ rc: Int) -> CallResult { rc < 0 ? CallResult(value: -1, errno: errno) : CallResult(value: rc) }
        switch c {
        case .listen(let backlog):
            let (fd, e) = boundSocket(tuple.targetPort)
            guard fd >= 0 else { return CallResult(value: -1, errno: e) }
            if Glibc.listen(fd, backlog) < 0 {
                let e = errno
                Glibc.close(fd)
                return CallResult(value: -1, errno: e)
            }
            s.listenFD = fd
            return CallResult(value: 0)
        case .connect:
            let (fd, e) = boundSocket(tuple.targetPort)
            guard fd >= 0 else { return CallResult(value: -1, errno: e) }
            s.connFD = fd
            return result(Int(withSockaddr(testerIP, tuple.testerPort) { Glibc.connect(fd, $0, $1) }))
        case .accept:
            // One connection per listener: once taken, the listener closes, so that the tuple's state is the
            // connection's alone (a lingering listener would answer a later SYN as LISTEN does).
            guard s.listenFD >= 0 else { return CallResult(value: -1, errno: EBADF) }
            let fd = Sys.acceptNonblocking(s.listenFD)
            if fd >= 0 {
                if s.connFD >= 0 { Glibc.close(s.connFD) }
                s.connFD = fd
                Glibc.close(s.listenFD)
                s.listenFD = -1
                return CallResult(value: 0)
            }
            return CallResult(value: -1, errno: -fd)
        case .send(let n):
            guard s.connFD >= 0 else { return CallResult(value: -1, errno: EBADF) }
            let buf = [UInt8](repeating: 0x61, count: n)
            return result(buf.withUnsafeBytes { Glibc.send(s.connFD, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) })
        case .recv(let n):
            guard s.connFD >= 0 else { return CallResult(value: -1, errno: EBADF) }
            var buf = [UInt8](repeating: 0, count: max(1, n))
            return result(buf.withUnsafeMutableBytes { Glibc.recv(s.connFD, $0.baseAddress, n, 0) })
        case .shutdown(let how):
            guard s.connFD >= 0 else { return CallResult(value: -1, errno: EBADF) }
            let h: Int32 = switch how {
            case .rd: Int32(SHUT_RD)
            case .wr: Int32(SHUT_WR)
            case .rdwr: Int32(SHUT_RDWR)
            }
            return result(Int(Glibc.shutdown(s.connFD, h)))
        case .close, .abort:
            // The connection's socket if there is one, else the listener.
            let which = s.connFD >= 0 ? s.connFD : s.listenFD
            guard which >= 0 else { return CallResult(value: -1, errno: EBADF) }
            if c == .abort {
                do { try Sys.setLinger(which, on: true, seconds: 0) } catch { return CallResult(value: -1, errno: error.errno) }
            }
            let rc = Glibc.close(which)
            if which == s.connFD { s.connFD = -1 } else { s.listenFD = -1 }
            return result(Int(rc))
        case .release:
            if s.listenFD >= 0 { Glibc.close(s.listenFD) }
            if s.connFD >= 0 {
                try? Sys.setLinger(s.connFD, on: true, seconds: 0)
                Glibc.close(s.connFD)
            }
            s = Sockets()
            return CallResult(value: 0)
        case .setsockopt(let name, let value):
            let fd = s.connFD >= 0 ? s.connFD : s.listenFD
            guard fd >= 0 else { return CallResult(value: -1, errno: EBADF) }
            var v = value
            let (level, opt): (Int32, Int32)
            switch name {
            case "TCP_NODELAY": (level, opt) = (Int32(IPPROTO_TCP), TCP_NODELAY)
            case "TCP_MAXSEG": (level, opt) = (Int32(IPPROTO_TCP), TCP_MAXSEG)
            case "SO_RCVBUF": (level, opt) = (SOL_SOCKET, SO_RCVBUF)
            case "SO_SNDBUF": (level, opt) = (SOL_SOCKET, SO_SNDBUF)
            case "SO_LINGER":
                do { try Sys.setLinger(fd, on: true, seconds: value) } catch { return CallResult(value: -1, errno: error.errno) }
                return CallResult(value: 0)
            default: return CallResult(value: -1, errno: ENOPROTOOPT)
            }
            return result(Int(Glibc.setsockopt(fd, level, opt, &v, socklen_t(MemoryLayout<Int32>.size))))
        }
    }

    public func state(of tuple: Tuple) throws -> TCPState? {
        try states(of: [tuple])[tuple] ?? nil
    }

    /// The connections' states from sock_diag: for each 4-tuple the socket the kernel would deliver its segments
    /// to: the connection (or its time-wait or request socket); with none, the port's listener (LISTEN); else
    /// CLOSED. One exact lookup each, so the cost does not grow with the sockets earlier cases left behind.
    public func states(of tuples: [Tuple]) throws -> [Tuple: TCPState?] {
        let (fam, diag, tip, xip) = (family, diagFD, targetIP.bytes, testerIP.bytes)
        return try topology.target.run {
            var out: [Tuple: TCPState?] = [:]
            for t in tuples {
                if let s = try Sys.tcpLookup(diag, family: fam, src: tip, sport: t.targetPort, dst: xip, dport: t.testerPort) {
                    out[t] = .some(TCPState.fromLinux(s.state))
                } else {
                    out[t] = .closed
                }
            }
            return out
        }
    }
}
