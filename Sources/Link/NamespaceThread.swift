import Core
import Foundation
import Synchronization

/// A thread that lives in one network namespace, running jobs submitted from anywhere. `setns` and
/// `unshare(CLONE_NEWNET)` act on a single thread, and sockets, rtnetlink and libpcap handles are bound to the
/// namespace of the thread that opens them: so every namespace tcpspec uses has a thread of its own.
///
/// Namespaces made with `init(newNamespace: true)` are anonymous: no /run/netns entry exists, and the kernel
/// frees them (with their links) when the last thread and descriptor referring to them are gone — at exit,
/// on a signal, even on SIGKILL.
public final class NamespaceThread: @unchecked Sendable {
    /// Queued jobs (nil asks the thread to end) and a semaphore counting them: the queue is a Mutex, whose
    /// accesses the optimizer cannot move, rather than a property guarded by an opaque lock.
    private let jobs = Mutex<[Job?]>([])
    private let pending = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    private var thread: Thread?

    private struct Job: @unchecked Sendable {
        var body: () -> Void
    }
    /// The namespace's file descriptor (open for the thread's lifetime), and the thread's id.
    public var netnsFD: FileDescriptor { opened! }
    /// Set by the thread before `init` returns (which throws if it could not be opened).
    private var opened: FileDescriptor?
    public private(set) var tid: Int32 = 0
    /// The namespace's inode (`net:[inode]`).
    public private(set) var netnsInode: UInt64 = 0
    public let name: String

    /// - Parameters:
    ///   - newNamespace: make an anonymous namespace for the thread; otherwise it stays where tcpspec runs.
    ///   - joining: or join an existing namespace by path (e.g. /run/netns/NAME, one the user made).
    public init(name: String, newNamespace: Bool, joining: String? = nil) throws {
        self.name = name
        let ready = DispatchSemaphore(value: 0)
        let failure = Box<Error?>(nil)
        let t = Thread { [unowned self] in
            do {
                if newNamespace { try Sys.unshareNetwork() }
                if let path = joining {
                    let fd = try Sys.openNetns(path)
                    defer { Sys.close(fd) }
                    try Sys.setns(fd)
                }
                self.opened = try Sys.openThreadNetns()
                self.tid = Sys.gettid()
                self.netnsInode = Sys.threadNetnsInode() ?? 0
            } catch {
                failure.value = error
                ready.signal()
                return
            }
            ready.signal()
            self.loop()
        }
        t.name = "tcpspec-\(name)"
        t.stackSize = 1 << 20
        thread = t
        t.start()
        ready.wait()
        if let e = failure.value { throw e }
    }

    private func loop() {
        while true {
            pending.wait()
            guard let job = jobs.withLock({ $0.removeFirst() }) else { break }
            job.body()
        }
        if let opened { Sys.close(opened) }
    }

    /// Runs `body` on the namespace's thread and returns its result.
    public func run<T>(_ body: @escaping () throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Box<Result<T, Error>?>(nil)
        jobs.withLock {
            $0.append(Job {
                result.value = Result { try body() }
                done.signal()
            })
        }
        pending.signal()
        done.wait()
        return try result.value!.get()
    }

    /// Ends the thread after its queued jobs; the namespace goes when nothing else refers to it.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        jobs.withLock { $0.append(nil) }
        pending.signal()
    }

    deinit { stop() }
}

/// A mutable cell handed between threads that synchronize by other means (a semaphore).
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
