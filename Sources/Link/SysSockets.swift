import Core
import CNetShim
import Foundation
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// An address and port a socket binds or connects to.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16
    public init(_ ip: IPAddress, _ port: UInt16) {
        self.ip = ip
        self.port = port
    }
    public var description: String { ip.isV6 ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
}

/// The integer socket options tcpspec sets (SO_LINGER aside: see `SocketSystem.setLinger`).
public enum SocketOption: Hashable, Sendable, CaseIterable {
    case reuseAddress, noDelay, maxSegment, receiveBuffer, sendBuffer
    /// TCP_USER_TIMEOUT (ms): the application's R2 (RFC 9293 §3.8.3 MUST-21).
    case userTimeout
    /// SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT (RFC 9293 §3.8.4 MUST-24, MUST-27).
    case keepAlive, keepIdle, keepInterval, keepCount

    var levelAndName: (Int32, Int32) {
        switch self {
        case .reuseAddress: (SOL_SOCKET, SO_REUSEADDR)
        case .noDelay: (Int32(IPPROTO_TCP), TCP_NODELAY)
        case .maxSegment: (Int32(IPPROTO_TCP), TCP_MAXSEG)
        case .receiveBuffer: (SOL_SOCKET, SO_RCVBUF)
        case .sendBuffer: (SOL_SOCKET, SO_SNDBUF)
        // <netinet/tcp.h> numbers (Glibc as Swift imports it lacks TCP_USER_TIMEOUT).
        case .userTimeout: (Int32(IPPROTO_TCP), 18)
        case .keepAlive: (SOL_SOCKET, SO_KEEPALIVE)
        case .keepIdle: (Int32(IPPROTO_TCP), 4)
        case .keepInterval: (Int32(IPPROTO_TCP), 5)
        case .keepCount: (Int32(IPPROTO_TCP), 6)
        }
    }
}

/// Which directions `shutdown` closes.
public enum ShutdownDirection: Hashable, Sendable {
    case read, write, both
}

/// The socket calls an application makes on a TCP stack (what `LinuxTarget` makes on the kernel's). A protocol
/// so that the logic above it can be driven without root or a kernel: `LiveSockets` is the system's, a test
/// passes its own. Every failure is the call's errno (as `SystemError`), never a global.
public protocol SocketSystem: Sendable {
    /// A non-blocking, close-on-exec TCP socket.
    func tcpSocket(_ version: IPVersion) throws(SystemError) -> SocketDescriptor
    func setOption(_ socket: SocketDescriptor, _ option: SocketOption, _ value: Int32) throws(SystemError)
    /// SO_LINGER on, for `seconds` (0: close resets the connection).
    func setLinger(_ socket: SocketDescriptor, seconds: Int32) throws(SystemError)
    func bind(_ socket: SocketDescriptor, to address: SocketAddress) throws(SystemError)
    func listen(_ socket: SocketDescriptor, backlog: Int32) throws(SystemError)
    func connect(_ socket: SocketDescriptor, to address: SocketAddress) throws(SystemError)
    /// accept4, the new socket non-blocking and close-on-exec too.
    func accept(_ socket: SocketDescriptor) throws(SystemError) -> SocketDescriptor
    /// How many of `bytes` the stack took (no SIGPIPE on a closed connection: EPIPE).
    func send(_ socket: SocketDescriptor, _ bytes: [UInt8]) throws(SystemError) -> Int
    /// Up to `count` bytes read.
    func receive(_ socket: SocketDescriptor, upTo count: Int) throws(SystemError) -> [UInt8]
    func shutdown(_ socket: SocketDescriptor, _ direction: ShutdownDirection) throws(SystemError)
    func close(_ socket: SocketDescriptor) throws(SystemError)
}

/// The kernel's sockets, in the network namespace of the calling thread.
public struct LiveSockets: SocketSystem {
    public init() {}

    public func tcpSocket(_ version: IPVersion) throws(SystemError) -> SocketDescriptor {
        let family = version == .v4 ? AF_INET : AF_INET6
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        return SocketDescriptor(rawValue: try Sys.checkErrno(fd, "socket"))
    }

    public func setOption(_ socket: SocketDescriptor, _ option: SocketOption, _ value: Int32) throws(SystemError) {
        var v = value
        let (level, name) = option.levelAndName
        try Sys.checkErrno(setsockopt(socket.rawValue, level, name, &v, socklen_t(MemoryLayout<Int32>.size)), "setsockopt(\(option))")
    }

    public func setLinger(_ socket: SocketDescriptor, seconds: Int32) throws(SystemError) {
        try Sys.check(ts_set_linger(socket.rawValue, 1, seconds), "setsockopt(SO_LINGER)")
    }

    public func bind(_ socket: SocketDescriptor, to address: SocketAddress) throws(SystemError) {
        try Sys.checkErrno(Self.withSockaddr(address) { Glibc.bind(socket.rawValue, $0, $1) }, "bind \(address)")
    }

    public func listen(_ socket: SocketDescriptor, backlog: Int32) throws(SystemError) {
        try Sys.checkErrno(Glibc.listen(socket.rawValue, backlog), "listen")
    }

    public func connect(_ socket: SocketDescriptor, to address: SocketAddress) throws(SystemError) {
        try Sys.checkErrno(Self.withSockaddr(address) { Glibc.connect(socket.rawValue, $0, $1) }, "connect \(address)")
    }

    public func accept(_ socket: SocketDescriptor) throws(SystemError) -> SocketDescriptor {
        SocketDescriptor(rawValue: try Sys.check(ts_accept_nonblock(socket.rawValue), "accept"))
    }

    public func send(_ socket: SocketDescriptor, _ bytes: [UInt8]) throws(SystemError) -> Int {
        let n = bytes.withUnsafeBytes { Glibc.send(socket.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n < 0 { throw SystemError(operation: "send", errno: errno) }
        return n
    }

    public func receive(_ socket: SocketDescriptor, upTo count: Int) throws(SystemError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max(1, count))
        let n = buf.withUnsafeMutableBytes { Glibc.recv(socket.rawValue, $0.baseAddress, count, 0) }
        if n < 0 { throw SystemError(operation: "recv", errno: errno) }
        return Array(buf.prefix(n))
    }

    public func shutdown(_ socket: SocketDescriptor, _ direction: ShutdownDirection) throws(SystemError) {
        let how: Int32 = switch direction {
        case .read: Int32(SHUT_RD)
        case .write: Int32(SHUT_WR)
        case .both: Int32(SHUT_RDWR)
        }
        try Sys.checkErrno(Glibc.shutdown(socket.rawValue, how), "shutdown")
    }

    public func close(_ socket: SocketDescriptor) throws(SystemError) {
        try Sys.checkErrno(Glibc.close(socket.rawValue), "close")
    }

    static func withSockaddr<T>(_ address: SocketAddress, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        switch address.ip {
        case .v4(let a):
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = address.port.bigEndian
            sa.sin_addr.s_addr = a.bigEndian
            return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case .v6(let b):
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = address.port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: b) }
            return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
    }
}

extension Sys {
    /// The system's sockets (the default of every target that makes kernel sockets).
    public static let sockets: any SocketSystem = LiveSockets()
}
