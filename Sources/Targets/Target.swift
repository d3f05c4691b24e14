import Foundation
import Link
import Wire

/// An application call made on the target's socket under test.
public enum SocketCall: Hashable, Sendable, CustomStringConvertible {
    case listen(backlog: Int32)
    case connect
    case accept
    case send(Int)
    case recv(Int)
    case shutdown(ShutdownHow)
    case close
    case abort
    case setsockopt(String, Int32)
    /// Let go of the connection's sockets without a word on the wire where possible (end of a fuzz case): the
    /// listener is closed, a connection is aborted.
    case release

    public enum ShutdownHow: String, Hashable, Sendable { case rd, wr, rdwr }

    /// The call's name in capability lists and the agent protocol.
    public var name: String { String(description.split(separator: " ")[0]) }

    public var description: String {
        switch self {
        case .listen(let b): "listen \(b)"
        case .connect: "connect"
        case .accept: "accept"
        case .send(let n): "send \(n)"
        case .recv(let n): "recv \(n)"
        case .shutdown(let h): "shutdown \(h.rawValue)"
        case .close: "close"
        case .abort: "abort"
        case .setsockopt(let n, let v): "setsockopt \(n) \(v)"
        case .release: "release"
        }
    }
}

/// The result of a call: a count or descriptor, or an errno.
public struct CallResult: Hashable, Sendable, CustomStringConvertible {
    public var value: Int
    public var errno: Int32

    public init(value: Int, errno: Int32 = 0) {
        self.value = value
        self.errno = errno
    }

    public var description: String { errno == 0 ? "\(value)" : "-1 \(Errno.name(errno))" }
}

/// RFC 9293 state names, and the kernel's numbering (<linux/tcp.h>) mapped onto them.
public enum TCPStateName {
    public static func fromLinux(_ s: Int32) -> String {
        switch s {
        case 1: "ESTABLISHED"
        case 2: "SYN-SENT"
        case 3, 12: "SYN-RECEIVED"  // TCP_SYN_RECV, TCP_NEW_SYN_RECV (a request socket)
        case 4: "FIN-WAIT-1"
        case 5: "FIN-WAIT-2"
        case 6: "TIME-WAIT"
        case 7: "CLOSED"
        case 8: "CLOSE-WAIT"
        case 9: "LAST-ACK"
        case 10: "LISTEN"
        case 11: "CLOSING"
        default: "UNKNOWN(\(s))"
        }
    }

    public static let all = ["CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"]
}

public enum Errno {
    static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EBADF: "EBADF", EAGAIN: "EAGAIN", EACCES: "EACCES", EINVAL: "EINVAL",
        EPIPE: "EPIPE", ENOTSOCK: "ENOTSOCK", EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL", ENETUNREACH: "ENETUNREACH",
        ECONNABORTED: "ECONNABORTED", ECONNRESET: "ECONNRESET", ENOBUFS: "ENOBUFS", EISCONN: "EISCONN", ENOTCONN: "ENOTCONN",
        ESHUTDOWN: "ESHUTDOWN", ETIMEDOUT: "ETIMEDOUT", ECONNREFUSED: "ECONNREFUSED", EHOSTUNREACH: "EHOSTUNREACH", EALREADY: "EALREADY",
        EINPROGRESS: "EINPROGRESS", EOPNOTSUPP: "EOPNOTSUPP", ENOPROTOOPT: "ENOPROTOOPT",
    ]

    public static func name(_ e: Int32) -> String { names[e] ?? "errno \(e)" }
    public static func value(_ name: String) -> Int32? { names.first { $0.value == name }?.key }
}

/// What a target offers: tcpspec adapts to it (no state report: judge on segments alone).
public struct Capabilities: Hashable, Sendable {
    public var calls: Set<String>
    public var reportsState: Bool
}

/// A connection under test, by its ports (the addresses are the target's and the tester's).
public struct Tuple: Hashable, Sendable, CustomStringConvertible {
    public var targetPort: UInt16
    public var testerPort: UInt16
    public init(targetPort: UInt16, testerPort: UInt16) {
        self.targetPort = targetPort
        self.testerPort = testerPort
    }
    public var description: String { "\(targetPort)<->\(testerPort)" }
}

/// A TCP stack under test, seen from the tester: application calls on a connection's socket, its state where
/// the stack reports it, and the link the tester injects into and captures from. Many connections may be in
/// flight at once, each on its own tuple.
public protocol Target: AnyObject, Sendable {
    var capabilities: Capabilities { get }
    var link: FrameLink { get }
    /// The clock the target's time runs on: callers measure deadlines, waits and durations on it.
    var clock: any Timekeeper { get }
    var testerMAC: MACAddress { get }
    var targetMAC: MACAddress { get }
    var testerIP: IPAddress { get }
    var targetIP: IPAddress { get }
    func call(_ c: SocketCall, on tuple: Tuple) throws -> CallResult
    /// The RFC state of the connection (nil when the target cannot tell).
    func state(of tuple: Tuple) throws -> String?
    /// The states of many connections at once.
    func states(of tuples: [Tuple]) throws -> [Tuple: String?]
    /// Injects frames in order.
    func inject(_ frames: [[UInt8]]) throws
    /// Returns once every frame injected before it has been processed, with every frame the target sent since
    /// the last barrier (in order). Silence is decided here without sleeping: a probe whose reply is known
    /// follows the frames, and its reply comes after all of theirs.
    func barrier() throws -> [Frame]
    /// One round: calls, frames, barrier, states (see `exchangeInSteps`).
    func exchange(calls: [(SocketCall, Tuple)], inject frames: [[UInt8]], states tuples: [Tuple]) throws -> Exchange
    /// A description of the target's settings, recorded with every result.
    var settings: [(String, String)] { get }
    func close()
    /// Starts the stack afresh after it failed (`TargetFailure`); every connection is gone after it.
    func restart() throws
}

/// What one round of many connections did: each call's result, every frame the target sent, each state.
public struct Exchange: Sendable {
    public var results: [CallResult]
    public var frames: [Frame]
    public var states: [Tuple: String?]
}

extension Target {
    public func restart() throws {
        throw TargetFailure(kind: .startFailed, detail: "this target cannot be restarted", log: "")
    }

    /// One round for many connections: the calls in order, then the frames, then a barrier, then the states.
    /// Targets that can do it in one go (no thread hop per call) override `exchange`; this is the general way.
    public func exchangeInSteps(calls: [(SocketCall, Tuple)], inject frames: [[UInt8]], states tuples: [Tuple]) throws -> Exchange {
        var results: [CallResult] = []
        for (c, t) in calls { results.append(try call(c, on: t)) }
        if !frames.isEmpty { try inject(frames) }
        let got = try barrier()
        return Exchange(results: results, frames: got, states: try states(of: tuples))
    }

    /// A frame from the tester to the target carrying `tcp`.
    public func frame(_ tcp: TCPHeader) -> Packet {
        let ip: IPHeader = targetIP.isV6 ? .v6(IPv6Header(source: testerIP, destination: targetIP)) : .v4(IPv4Header(source: testerIP, destination: targetIP))
        // A TUN device carries IP packets: no Ethernet header.
        return Packet(ethernet: link.linkType == .ethernet ? EthernetHeader(destination: targetMAC, source: testerMAC) : nil, ip: ip, tcp: tcp)
    }
}

/// `key=value` pairs on one line, a value with spaces in quotes (`net.ipv4.tcp_rmem="4096 32768 32768"`).
public func settingsLine(_ settings: [(String, String)]) -> String {
    settings.map { k, v in
        // The kernel prints multi-value sysctls with tabs: one space each, quoted, reads back the same.
        let words = v.split(whereSeparator: { $0 == " " || $0 == "\t" })
        return words.count > 1 ? "\(k)=\"\(words.joined(separator: " "))\"" : "\(k)=\(v)"
    }.joined(separator: " ")
}
