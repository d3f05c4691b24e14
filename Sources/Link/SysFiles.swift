import Core
import CNetShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A descriptor the seam handed out: a type of its own, as in swift-system, so that a count, a pid or an errno
/// cannot be passed where a descriptor belongs, nor a file where a socket does.
public struct Descriptor<Kind: DescriptorKind>: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public var description: String { "\(Kind.name) \(rawValue)" }
}

public protocol DescriptorKind { static var name: String { get } }
public enum FileKind: DescriptorKind { public static var name: String { "fd" } }
public enum SocketKind: DescriptorKind { public static var name: String { "socket" } }

/// A file, a pipe end, a namespace, a netlink, packet or TUN socket: what `Sys` reads, writes and closes.
public typealias FileDescriptor = Descriptor<FileKind>
/// A TCP socket of the stack under test, as the application holds it (see `SocketSystem`).
public typealias SocketDescriptor = Descriptor<SocketKind>

/// How a file is opened (O_RDONLY, O_WRONLY, O_RDWR).
public enum FileAccess: Sendable {
    case readOnly, writeOnly, readWrite

    var flags: Int32 {
        switch self {
        case .readOnly: O_RDONLY
        case .writeOnly: O_WRONLY
        case .readWrite: O_RDWR
        }
    }
}

/// What else `open` does (O_CREAT, O_EXCL, O_APPEND, O_TRUNC); every descriptor is close-on-exec.
public struct FileOpenOptions: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let create = FileOpenOptions(rawValue: O_CREAT)
    public static let exclusive = FileOpenOptions(rawValue: O_EXCL)
    public static let append = FileOpenOptions(rawValue: O_APPEND)
    public static let truncate = FileOpenOptions(rawValue: O_TRUNC)
}

/// Files, pipes, waiting and clocks: the descriptor-level calls of the seam.
extension Sys {
    /// open(2), always O_CLOEXEC (no descriptor of tcpspec's leaks into a stack it starts).
    public static func open(_ path: String, _ access: FileAccess, options: FileOpenOptions = [], permissions: mode_t = 0o644,
                            operation: @autoclosure () -> String? = nil) throws(SystemError) -> FileDescriptor {
        let fd = Glibc.open(path, access.flags | options.rawValue | O_CLOEXEC, permissions)
        if fd < 0 { throw SystemError(operation: operation() ?? "open \(path)", errno: errno) }
        return FileDescriptor(rawValue: fd)
    }

    public static func close(_ fd: FileDescriptor) { _ = Glibc.close(fd.rawValue) }

    /// One read(2) into `buffer` (EINTR retried): how many bytes it read, 0 at end of file.
    public static func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        while true {
            let n = Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw SystemError(operation: "read", errno: errno) }
        }
    }

    /// One read(2) of up to `count` bytes (EINTR retried): empty at end of file.
    public static func read(_ fd: FileDescriptor, upTo count: Int) throws(SystemError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        // Not a typed-throws closure: Swift 6.3.1's IRGen crashes on that reabstraction (see AtomicFile).
        let n = buf.withUnsafeMutableBytes { b -> Result<Int, SystemError> in
            do throws(SystemError) { return .success(try read(fd, into: b)) } catch { return .failure(error) }
        }
        return Array(buf.prefix(try n.get()))
    }

    /// pread(2): up to `count` bytes at `offset`, without moving the file's offset.
    public static func read(_ fd: FileDescriptor, at offset: Int, upTo count: Int) throws(SystemError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max(0, count))
        let n = buf.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, $0.count, off_t(offset)) }
        if n < 0 { throw SystemError(operation: "pread", errno: errno) }
        return Array(buf.prefix(n))
    }

    /// The size of an open file (lseek to its end).
    public static func size(_ fd: FileDescriptor) throws(SystemError) -> Int {
        let end = lseek(fd.rawValue, 0, SEEK_END)
        if end < 0 { throw SystemError(operation: "lseek", errno: errno) }
        return Int(end)
    }

    /// One write(2) (EINTR retried): how many bytes it wrote.
    public static func write(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer) throws(SystemError) -> Int {
        while true {
            let n = Glibc.write(fd.rawValue, bytes.baseAddress, bytes.count)
            if n >= 0 { return n }
            if errno != EINTR { throw SystemError(operation: "write", errno: errno) }
        }
    }

    /// Writes all of `bytes` (one write(2) when it fits, which for O_APPEND keeps a short line whole).
    public static func writeAll(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            done += try write(fd, UnsafeRawBufferPointer(rebasing: bytes[done...]))
        }
    }

    public static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(SystemError) {
        // Not a typed-throws closure: Swift 6.3.1's IRGen crashes on that reabstraction (see AtomicFile).
        let failure = bytes.withUnsafeBytes { b -> SystemError? in
            do throws(SystemError) { try writeAll(fd, b); return nil } catch { return error }
        }
        if let failure { throw failure }
    }

    /// Waits until `fd` has something to read, up to `timeout` seconds (at least a millisecond, rounded up):
    /// false on a timeout, an interruption or an error (callers check their deadline and wait again).
    @discardableResult
    public static func waitReadable(_ fd: FileDescriptor, timeout: Double) -> Bool {
        var pfd = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, Int32(max(1, (timeout * 1000).rounded(.up)))) > 0
    }

    /// Sleeps `seconds` of real time (nanosleep, resumed after a signal).
    public static func sleep(_ seconds: Double) {
        guard seconds > 0 else { return }
        let whole = seconds.rounded(.down)
        var ts = timespec(tv_sec: Int(whole), tv_nsec: min(999_999_999, Int((seconds - whole) * 1e9)))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0, errno == EINTR { ts = rest }
    }

    /// Gives the CPU to another runnable thread (sched_yield): ksoftirqd, say, which drains the veth backlog once
    /// softirqs are deferred to it.
    public static func yieldCPU() { _ = sched_yield() }

    /// CLOCK_MONOTONIC in seconds: for durations and deadlines (it never jumps when the wall clock is set).
    public static func monotonicNow() -> Double { now(CLOCK_MONOTONIC) }

    /// CLOCK_REALTIME in seconds since the epoch. Only for the timestamps of frames tcpspec makes itself: pcap
    /// records carry wall-clock times, and libpcap stamps the captured frames beside them with the same clock.
    public static func wallClockNow() -> Double { now(CLOCK_REALTIME) }

    /// The calling thread's CPU time in seconds (benchmarks split a step's time between threads with it).
    public static func threadCPUTime() -> Double { now(CLOCK_THREAD_CPUTIME_ID) }

    private static func now(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Ignores SIGPIPE for the process: a peer (an agent, a socket) that went away makes a write fail with
    /// EPIPE rather than end tcpspec.
    public static func ignoreBrokenPipes() { signal(SIGPIPE, SIG_IGN) }

    /// The running kernel's release (uname -r).
    public static func kernelRelease() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
