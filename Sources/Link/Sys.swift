import Core
import CNetShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: what was attempted and errno.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var errno: Int32
    /// Set when tcpspec itself refused the call (it would have changed the root network namespace).
    public var refusal: String?

    public init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    init(refusing operation: String, because why: String) {
        self.operation = operation
        self.errno = EPERM
        self.refusal = "tcpspec: refusing to \(operation): \(why)"
    }

    public var description: String { refusal ?? "\(operation): \(String(cString: strerror(errno))) (errno \(errno))" }
    public var isPermission: Bool { refusal == nil && (errno == EPERM || errno == EACCES) }
}

/// Every system call tcpspec makes goes through here (the swift-system way: one small seam, typed descriptors,
/// typed errors, no errno globals leaking into callers): links and namespaces in this file; files, pipes,
/// waiting and clocks in SysFiles; the sockets of a stack under test in SysSockets (`SocketSystem`, which tests
/// replace); the run registry's calls in SysRun; helper programs in SysProgram.
public enum Sys {
    @discardableResult
    static func check(_ rc: Int32, _ op: @autoclosure () -> String) throws(SystemError) -> Int32 {
        if rc < 0 { throw SystemError(operation: op(), errno: -rc) }
        return rc
    }

    @discardableResult
    static func checkErrno(_ rc: Int32, _ op: @autoclosure () -> String) throws(SystemError) -> Int32 {
        if rc < 0 {
            let e = errno  // before the operation's text is built (which may allocate)
            throw SystemError(operation: op(), errno: e)
        }
        return rc
    }

    public static func unshareNetwork() throws(SystemError) { try check(ts_unshare_net(), "unshare(CLONE_NEWNET)") }
    public static func openThreadNetns() throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try check(ts_open_thread_netns(), "open /proc/thread-self/ns/net"))
    }
    public static func openNetns(_ path: String) throws(SystemError) -> FileDescriptor { try open(path, .readOnly) }
    public static func setns(_ fd: FileDescriptor) throws(SystemError) { try check(ts_setns_net(fd.rawValue), "setns(CLONE_NEWNET)") }
    public static func gettid() -> Int32 { ts_gettid() }

    /// The inode of a network namespace file (`/proc/thread-self/ns/net`: the calling thread's), or nil if
    /// it cannot be read (an unprivileged process cannot read `/proc/1/ns/net`).
    public static func netnsInode(_ path: String = "/proc/thread-self/ns/net") -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    public static func threadNetnsInode() -> UInt64? { netnsInode() }

    /// Defence in depth for every call that changes links, routes or sysctls: they run only on the threads of
    /// namespaces tcpspec made, never in the root network namespace (pid 1's) nor in the one tcpspec started in.
    public static func refuseOutsideOwnNamespace(_ operation: @autoclosure () -> String) throws(SystemError) {
        guard let mine = netnsInode() else {
            throw SystemError(refusing: operation(), because: "cannot read this thread's network namespace (/proc/thread-self/ns/net)")
        }
        if let root = netnsInode("/proc/1/ns/net"), root == mine {
            throw SystemError(refusing: operation(), because: "this thread is in the root network namespace (net:[\(mine)]); tcpspec changes only namespaces it made")
        }
        if let start = netnsInode("/proc/self/ns/net"), start == mine {
            throw SystemError(refusing: operation(), because: "this thread is in the network namespace tcpspec was started in (net:[\(mine)]); tcpspec changes only namespaces it made")
        }
    }

    public static func rtnlOpen() throws(SystemError) -> FileDescriptor { FileDescriptor(rawValue: try check(ts_rtnl_open(), "socket(NETLINK_ROUTE)")) }
    public static func vethCreate(_ nl: FileDescriptor, _ name: String, peer: String, peerNetns: FileDescriptor) throws(SystemError) {
        try refuseOutsideOwnNamespace("create veth \(name)/\(peer)")
        try check(ts_veth_create(nl.rawValue, name, peer, peerNetns.rawValue), "create veth \(name)/\(peer)")
    }
    public static func linkIndex(_ name: String) throws(SystemError) -> Int32 { try check(ts_link_index(name), "if_nametoindex(\(name))") }
    public static func linkSet(_ nl: FileDescriptor, _ ifindex: Int32, up: Bool, mac: [UInt8]?, mtu: Int32 = 0) throws(SystemError) {
        try refuseOutsideOwnNamespace("set link \(ifindex) \(up ? "up" : "down")")
        let nl = nl.rawValue
        let rc: Int32 = if let mac { mac.withUnsafeBufferPointer { ts_link_set(nl, ifindex, up ? 1 : 0, $0.baseAddress, mtu) } } else { ts_link_set(nl, ifindex, up ? 1 : 0, nil, mtu) }
        try check(rc, "set link \(ifindex) \(up ? "up" : "down")")
    }
    public static func addrAdd(_ nl: FileDescriptor, _ ifindex: Int32, family: Int32, address: [UInt8], prefix: Int32) throws(SystemError) {
        try refuseOutsideOwnNamespace("add an address to link \(ifindex)")
        try check(address.withUnsafeBufferPointer { ts_addr_add(nl.rawValue, ifindex, family, $0.baseAddress, prefix, 1) }, "add address to link \(ifindex)")
    }
    public static func neighAdd(_ nl: FileDescriptor, _ ifindex: Int32, family: Int32, address: [UInt8], mac: [UInt8]) throws(SystemError) {
        try refuseOutsideOwnNamespace("add a static neighbour on link \(ifindex)")
        let rc = address.withUnsafeBufferPointer { a in mac.withUnsafeBufferPointer { m in ts_neigh_add(nl.rawValue, ifindex, family, a.baseAddress, m.baseAddress) } }
        try check(rc, "add static neighbour on link \(ifindex)")
    }
    public static func offloadsOff(_ name: String) throws(SystemError) {
        try refuseOutsideOwnNamespace("turn offloads off on \(name)")
        try check(ts_offloads_off(name), "turn offloads off on \(name)")
    }
    public static func linkMAC(_ name: String) throws(SystemError) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 6)
        try check(mac.withUnsafeMutableBufferPointer { ts_link_mac(name, $0.baseAddress) }, "read MAC of \(name)")
        return mac
    }

    /// Waits until the interface is operationally up (IFF_RUNNING) in the calling thread's namespace. A link
    /// set up is not yet passing frames: the kernel's link watcher activates its queue (and sets the operating
    /// state) asynchronously, up to a second later when it ran recently — a frame sent before is dropped.
    /// Measured: 2 of 100 replays lost the first SYN that way under parallel load.
    public static func waitRunning(_ name: String, timeout: Double = 5) throws(SystemError) {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let flags = try check(ts_link_flags(name), "read the flags of \(name)")
            if flags & Int32(IFF_RUNNING) != 0 { return }
            if Date() > deadline { throw SystemError(operation: "wait for \(name) to be running (operstate up)", errno: ETIMEDOUT) }
            usleep(2000)
        }
    }

    /// Writes a sysctl of the calling thread's network namespace (`net.ipv4.tcp_rfc1337` → /proc/sys/net/...).
    public static func writeSysctl(_ key: String, _ value: String) throws(SystemError) {
        try refuseOutsideOwnNamespace("write sysctl \(key)")
        let path = "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/")
        let fd = try open(path, .writeOnly)
        defer { close(fd) }
        let bytes = Array((value + "\n").utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd.rawValue, $0.baseAddress, $0.count) }
        if n < 0 { throw SystemError(operation: "write \(path)", errno: errno) }
    }

    public static func readSysctl(_ key: String) -> String? {
        let path = "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/")
        guard let s = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return s.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public static func diagOpen() throws(SystemError) -> FileDescriptor { FileDescriptor(rawValue: try check(ts_diag_open(), "socket(NETLINK_SOCK_DIAG)")) }
    public static func tcpDump(_ fd: FileDescriptor, family: Int32) throws(SystemError) -> [ts_tcp_sock] {
        let fd = fd.rawValue
        var cap = 64
        while true {
            var buf = [ts_tcp_sock](repeating: ts_tcp_sock(), count: cap)
            let n = try check(buf.withUnsafeMutableBufferPointer { ts_tcp_dump(fd, family, $0.baseAddress, Int32(cap)) }, "sock_diag TCP dump")
            if Int(n) <= cap { return Array(buf.prefix(Int(n))) }
            cap = Int(n) + 16
        }
    }

    /// The socket a segment of this 4-tuple would reach (connection, time-wait, request, or the port's listener).
    public static func tcpLookup(_ fd: FileDescriptor, family: Int32, src: [UInt8], sport: UInt16, dst: [UInt8], dport: UInt16) throws(SystemError) -> ts_tcp_sock? {
        var out = ts_tcp_sock()
        let rc = src.withUnsafeBufferPointer { s in dst.withUnsafeBufferPointer { d in ts_tcp_lookup(fd.rawValue, family, s.baseAddress, sport, d.baseAddress, dport, &out) } }
        try check(rc, "sock_diag lookup")
        return rc == 1 ? out : nil
    }

    public static func tunOpen(_ name: String, tap: Bool) throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try check(ts_tun_open(name, tap ? 1 : 0), "open /dev/net/tun (\(name))"))
    }
    public static func tunCreatePersistent(_ name: String, tap: Bool) throws(SystemError) {
        try refuseOutsideOwnNamespace("create \(tap ? "TAP" : "TUN") device \(name)")
        try check(ts_tun_create_persistent(name, tap ? 1 : 0), "create \(tap ? "TAP" : "TUN") device \(name)")
    }

    /// Starts a program in the calling thread's namespace; it is killed when that thread ends (see `ts_spawn`).
    public static func spawn(_ path: String, arguments: [String], environment: [String], directory: String?,
                             stdin: FileDescriptor, stdout: FileDescriptor, stderr: FileDescriptor) throws(SystemError) -> Int32 {
        func cArray(_ a: [String]) -> [UnsafeMutablePointer<CChar>?] { a.map { strdup($0) } + [nil] }
        let argv = cArray([path] + arguments), envp = cArray(environment)
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        let rc = argv.withUnsafeBufferPointer { a in
            envp.withUnsafeBufferPointer { e in ts_spawn(path, a.baseAddress, e.baseAddress, directory, stdin.rawValue, stdout.rawValue, stderr.rawValue) }
        }
        return try check(rc, "start \(path)")
    }

    /// A pipe whose ends are close-on-exec (the child gets its copies through dup2).
    public static func pipe() throws(SystemError) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: [Int32] = [0, 0]
        try checkErrno(Glibc.pipe(&fds), "pipe")
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// Sends `signal` to a process tcpspec started, by its pid.
    public static func kill(_ pid: Int32, _ signal: Int32) { _ = Glibc.kill(pid, signal) }
    /// Signals the process group `pid` leads (every program `spawn` starts leads its own): it and what it started.
    public static func killGroup(_ pid: Int32, _ signal: Int32) { _ = Glibc.kill(-pid, signal) }

    /// The exit status of a child if it has ended (reaping it), without waiting.
    public static func reap(_ pid: Int32, wait: Bool = false) -> Int32? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, wait ? 0 : WNOHANG)
        return rc == pid ? status : nil
    }

    public static func pinCPU(_ cpu: Int32) throws(SystemError) { try check(ts_pin_cpu(cpu), "sched_setaffinity(\(cpu))") }
    public static func routeQuickAck(_ nl: FileDescriptor, family: Int32, prefix: [UInt8], length: Int32, ifindex: Int32) throws(SystemError) {
        try refuseOutsideOwnNamespace("change the route of link \(ifindex)")
        try check(prefix.withUnsafeBufferPointer { ts_route_quickack(nl.rawValue, family, $0.baseAddress, length, ifindex) }, "set quickack on the route of link \(ifindex)")
    }
    /// An AF_PACKET socket bound to one link (the raw baseline of the link benchmark).
    public static func packetSocket(ifindex: Int32) throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try check(ts_packet_socket(ifindex), "socket(AF_PACKET) on link \(ifindex)"))
    }
    /// An unbound AF_PACKET socket: whether this process may open raw sockets at all (`tcpspec doctor`).
    public static func rawPacketSocket() throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try checkErrno(socket(AF_PACKET, Int32(SOCK_RAW.rawValue), 0), "socket(AF_PACKET)"))
    }
}
