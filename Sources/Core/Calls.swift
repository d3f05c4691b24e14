#if canImport(Glibc)
import Glibc
#endif

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


/// What the spec answers a user call (RFC 9293 §3.10.1–6 "return ..."), typed: a spec's `reply "..."` is read into
/// this once, when the spec is compiled, so every target and report sees the same error with its errno.
public enum CallReply: Hashable, Sendable, CustomStringConvertible {
    case ok
    /// The request is queued (RECEIVE before text arrives, SEND before the connection is synchronized).
    case queued
    /// STATUS's answer.
    case state
    case error(CallError)

    /// `ok`, `queued`, `state`, or `error: TEXT` with one of RFC 9293's error texts (or an errno name a profile cites).
    public init?(spec text: String) {
        switch text {
        case "ok": self = .ok
        case "queued": self = .queued
        case "state": self = .state
        default:
            guard text.hasPrefix("error: "), let e = CallError(rawValue: String(text.dropFirst(7))) else { return nil }
            self = .error(e)
        }
    }

    public var description: String {
        switch self {
        case .ok: "ok"
        case .queued: "queued"
        case .state: "state"
        case .error(let e): "error: \(e.rawValue)"
        }
    }
}

/// The errors RFC 9293 §3.10 has user calls return, each with the errno a sockets API gives for it.
public enum CallError: String, CaseIterable, Hashable, Sendable {
    case connectionDoesNotExist = "connection does not exist"
    case connectionClosing = "connection closing"
    case connectionAlreadyExists = "connection already exists"
    case foreignSocketUnspecified = "foreign socket unspecified"
    case connectionReset = "connection reset"
    case connectionRefused = "connection refused"
    case insufficientResources = "insufficient resources"
    case connectionIllegal = "connection illegal for this process"
    /// Not an RFC text: a profile's non-blocking call that would wait (Linux's SEND before the handshake).
    case wouldBlock = "EAGAIN"

    public var errno: Int32 {
        switch self {
        case .connectionDoesNotExist: ENOTCONN
        case .connectionClosing: EPIPE
        case .connectionAlreadyExists: EISCONN
        case .foreignSocketUnspecified: EINVAL
        case .connectionReset: ECONNRESET
        case .connectionRefused: ECONNREFUSED
        case .insufficientResources: ENOBUFS
        case .connectionIllegal: EACCES
        case .wouldBlock: EAGAIN
        }
    }
}
