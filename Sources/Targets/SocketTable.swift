import Core
import Link
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// The application side of `LinuxTarget`: each connection's sockets and what a `SocketCall` does with them,
/// through a `SocketSystem` (the kernel's, or a test's). Used from one thread (the target namespace's).
struct SocketTable {
    /// A connection's sockets: its listener (passive opens) and the connection itself.
    struct Sockets {
        var listener: SocketDescriptor?
        var connection: SocketDescriptor?
        var isEmpty: Bool { listener == nil && connection == nil }
    }

    let system: any SocketSystem
    let version: IPVersion
    let targetIP: IPAddress
    let testerIP: IPAddress
    /// TCP_USER_TIMEOUT in milliseconds, set on every socket (a listener's children inherit it).
    let userTimeout: Int32?
    private(set) var sockets: [Tuple: Sockets] = [:]

    /// Keep-alives on every socket (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT), in whole seconds.
    let keepalive: KeepaliveSetting?

    init(system: any SocketSystem, version: IPVersion, targetIP: IPAddress, testerIP: IPAddress, userTimeout: Int32? = nil,
         keepalive: KeepaliveSetting? = nil) {
        self.keepalive = keepalive
        self.system = system
        self.version = version
        self.targetIP = targetIP
        self.testerIP = testerIP
        self.userTimeout = userTimeout
    }

    /// Makes the call on the tuple's sockets: a count or 0, or the call's errno.
    mutating func perform(_ c: SocketCall, on tuple: Tuple) -> CallResult {
        var s = sockets[tuple] ?? Sockets()
        let r = perform(c, tuple, &s)
        sockets[tuple] = s.isEmpty ? nil : s
        return r
    }

    /// Closes every socket (the target is closing).
    mutating func closeAll() {
        for s in sockets.values {
            for fd in [s.listener, s.connection].compactMap({ $0 }) { try? system.close(fd) }
        }
        sockets.removeAll()
    }

    private func result(_ body: () throws(SystemError) -> Int) -> CallResult {
        do { return CallResult(value: try body()) } catch { return CallResult(value: -1, errno: error.errno) }
    }

    /// A non-blocking socket bound to the target's address and port, Nagle off (a send goes out when asked).
    private func boundSocket(_ targetPort: UInt16) throws(SystemError) -> SocketDescriptor {
        let fd = try system.tcpSocket(version)
        try? system.setOption(fd, .reuseAddress, 1)
        try? system.setOption(fd, .noDelay, 1)
        var options: [(SocketOption, Int32)] = userTimeout.map { [(.userTimeout, $0)] } ?? []
        if let k = keepalive {
            // A listening socket's children inherit them (inet_csk_clone_lock copies SOCK_KEEPOPEN and the times).
            options += [(.keepAlive, 1), (.keepIdle, Int32(k.idle.rounded())), (.keepInterval, Int32(k.interval.rounded())), (.keepCount, Int32(k.probes))]
        }
        for (option, value) in options {
            do throws(SystemError) { try system.setOption(fd, option, value) } catch {
                try? system.close(fd)
                throw error
            }
        }
        do throws(SystemError) { try system.bind(fd, to: SocketAddress(targetIP, targetPort)) } catch {
            try? system.close(fd)
            throw error
        }
        return fd
    }

    private func perform(_ c: SocketCall, _ tuple: Tuple, _ s: inout Sockets) -> CallResult {
        switch c {
        case .listen(let backlog):
            return result { () throws(SystemError) in
                let fd = try boundSocket(tuple.targetPort)
                do throws(SystemError) { try system.listen(fd, backlog: backlog) } catch {
                    try? system.close(fd)
                    throw error
                }
                s.listener = fd
                return 0
            }
        case .connect:
            return result { () throws(SystemError) in
                let fd = try boundSocket(tuple.targetPort)
                s.connection = fd
                try system.connect(fd, to: SocketAddress(testerIP, tuple.testerPort))
                return 0
            }
        case .accept:
            // One connection per listener: once taken, the listener closes, so that the tuple's state is the
            // connection's alone (a lingering listener would answer a later SYN as LISTEN does).
            guard let listener = s.listener else { return CallResult(value: -1, errno: EBADF) }
            return result { () throws(SystemError) in
                let fd = try system.accept(listener)
                if let old = s.connection { try? system.close(old) }
                s.connection = fd
                try? system.close(listener)
                s.listener = nil
                return 0
            }
        case .send(let n):
            guard let fd = s.connection else { return CallResult(value: -1, errno: EBADF) }
            return result { () throws(SystemError) in try system.send(fd, [UInt8](repeating: 0x61, count: n)) }
        case .recv(let n):
            guard let fd = s.connection else { return CallResult(value: -1, errno: EBADF) }
            return result { () throws(SystemError) in try system.receive(fd, upTo: n).count }
        case .shutdown(let how):
            guard let fd = s.connection else { return CallResult(value: -1, errno: EBADF) }
            let direction: ShutdownDirection = switch how {
            case .rd: .read
            case .wr: .write
            case .rdwr: .both
            }
            return result { () throws(SystemError) in
                try system.shutdown(fd, direction)
                return 0
            }
        case .close, .abort:
            // The connection's socket if there is one, else the listener.
            guard let fd = s.connection ?? s.listener else { return CallResult(value: -1, errno: EBADF) }
            if c == .abort {
                do { try system.setLinger(fd, seconds: 0) } catch { return CallResult(value: -1, errno: error.errno) }
            }
            if fd == s.connection { s.connection = nil } else { s.listener = nil }
            return result { () throws(SystemError) in
                try system.close(fd)
                return 0
            }
        case .release:
            if let fd = s.listener { try? system.close(fd) }
            if let fd = s.connection {
                try? system.setLinger(fd, seconds: 0)
                try? system.close(fd)
            }
            s = Sockets()
            return CallResult(value: 0)
        case .setsockopt(let name, let value):
            guard let fd = s.connection ?? s.listener else { return CallResult(value: -1, errno: EBADF) }
            let option: SocketOption
            switch name {
            case "TCP_NODELAY": option = .noDelay
            case "TCP_MAXSEG": option = .maxSegment
            case "SO_RCVBUF": option = .receiveBuffer
            case "SO_SNDBUF": option = .sendBuffer
            case "TCP_USER_TIMEOUT": option = .userTimeout
            case "SO_KEEPALIVE": option = .keepAlive
            case "TCP_KEEPIDLE": option = .keepIdle
            case "TCP_KEEPINTVL": option = .keepInterval
            case "TCP_KEEPCNT": option = .keepCount
            case "SO_LINGER":
                return result { () throws(SystemError) in
                    try system.setLinger(fd, seconds: value)
                    return 0
                }
            default: return CallResult(value: -1, errno: ENOPROTOOPT)
            }
            return result { () throws(SystemError) in
                try system.setOption(fd, option, value)
                return 0
            }
        }
    }
}
