import Core
import Link
@testable import Targets
import Testing
import TestSupport
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A socket system that records every call and fails the ones a test names, with their errno: the Linux
/// target's application side run without root or a kernel.
final class RecordingSockets: SocketSystem, @unchecked Sendable {
    enum Call: Equatable {
        case socket(IPVersion)
        case option(SocketDescriptor, SocketOption, Int32)
        case linger(SocketDescriptor, Int32)
        case bind(SocketDescriptor, SocketAddress)
        case listen(SocketDescriptor, Int32)
        case connect(SocketDescriptor, SocketAddress)
        case accept(SocketDescriptor)
        case send(SocketDescriptor, Int)
        case receive(SocketDescriptor, Int)
        case shutdown(SocketDescriptor, ShutdownDirection)
        case close(SocketDescriptor)
    }
    enum Operation: Hashable { case socket, option, linger, bind, listen, connect, accept, send, receive, shutdown, close }

    // One thread at a time, as the target's namespace thread calls it.
    private(set) var calls: [Call] = []
    /// The errno each operation fails with.
    var failing: [Operation: Int32] = [:]
    /// What a receive finds waiting.
    var waiting = 3
    private var next: Int32 = 100

    private func make(_ call: Call, _ op: Operation) throws(SystemError) {
        calls.append(call)
        if let e = failing[op] { throw SystemError(operation: "\(op)", errno: e) }
    }

    private func descriptor() -> SocketDescriptor {
        defer { next += 1 }
        return SocketDescriptor(rawValue: next)
    }

    func tcpSocket(_ version: IPVersion) throws(SystemError) -> SocketDescriptor {
        try make(.socket(version), .socket)
        return descriptor()
    }
    func setOption(_ socket: SocketDescriptor, _ option: SocketOption, _ value: Int32) throws(SystemError) { try make(.option(socket, option, value), .option) }
    func setLinger(_ socket: SocketDescriptor, seconds: Int32) throws(SystemError) { try make(.linger(socket, seconds), .linger) }
    func bind(_ socket: SocketDescriptor, to address: SocketAddress) throws(SystemError) { try make(.bind(socket, address), .bind) }
    func listen(_ socket: SocketDescriptor, backlog: Int32) throws(SystemError) { try make(.listen(socket, backlog), .listen) }
    func connect(_ socket: SocketDescriptor, to address: SocketAddress) throws(SystemError) { try make(.connect(socket, address), .connect) }
    func accept(_ socket: SocketDescriptor) throws(SystemError) -> SocketDescriptor {
        try make(.accept(socket), .accept)
        return descriptor()
    }
    func send(_ socket: SocketDescriptor, _ bytes: [UInt8]) throws(SystemError) -> Int {
        try make(.send(socket, bytes.count), .send)
        return bytes.count
    }
    func receive(_ socket: SocketDescriptor, upTo count: Int) throws(SystemError) -> [UInt8] {
        try make(.receive(socket, count), .receive)
        return [UInt8](repeating: 0x61, count: min(count, waiting))
    }
    func shutdown(_ socket: SocketDescriptor, _ direction: ShutdownDirection) throws(SystemError) { try make(.shutdown(socket, direction), .shutdown) }
    func close(_ socket: SocketDescriptor) throws(SystemError) { try make(.close(socket), .close) }
}

@Suite("The system seam, mocked")
struct SeamTests {
    static let targetIP = IPAddress("192.0.2.2")!
    static let testerIP = IPAddress("192.0.2.1")!
    let tuple = Tuple(targetPort: 10000, testerPort: 30000)

    func table(_ sockets: RecordingSockets) -> SocketTable {
        SocketTable(system: sockets, version: .v4, targetIP: Self.targetIP, testerIP: Self.testerIP)
    }

    func fd(_ n: Int32) -> SocketDescriptor { SocketDescriptor(rawValue: n) }

    @Test("a passive open: the listener is bound with Nagle off, closed once its connection is accepted")
    func passiveOpen() {
        let sockets = RecordingSockets()
        var t = table(sockets)
        #expect(t.perform(.listen(backlog: 5), on: tuple) == CallResult(value: 0))
        #expect(t.perform(.accept, on: tuple) == CallResult(value: 0))
        #expect(t.perform(.send(10), on: tuple) == CallResult(value: 10))
        #expect(t.perform(.recv(100), on: tuple) == CallResult(value: 3))
        #expect(t.perform(.shutdown(.wr), on: tuple) == CallResult(value: 0))
        #expect(t.perform(.close, on: tuple) == CallResult(value: 0))
        #expect(sockets.calls == [
            .socket(.v4), .option(fd(100), .reuseAddress, 1), .option(fd(100), .noDelay, 1), .bind(fd(100), SocketAddress(Self.targetIP, 10000)),
            .listen(fd(100), 5),
            .accept(fd(100)), .close(fd(100)),
            .send(fd(101), 10), .receive(fd(101), 100), .shutdown(fd(101), .write), .close(fd(101)),
        ])
        // Nothing is left of the connection: a call on it fails as on a closed descriptor, without a system call.
        #expect(t.sockets.isEmpty)
        #expect(t.perform(.send(1), on: tuple) == CallResult(value: -1, errno: EBADF))
        #expect(sockets.calls.count == 11)
    }

    @Test("a failed call is its errno; a socket whose bind failed is closed, one whose connect is in progress kept")
    func errnos() {
        let sockets = RecordingSockets()
        var t = table(sockets)
        sockets.failing[.bind] = EADDRINUSE
        #expect(t.perform(.listen(backlog: 1), on: tuple) == CallResult(value: -1, errno: EADDRINUSE))
        #expect(sockets.calls.last == .close(fd(100)))
        #expect(t.sockets.isEmpty)

        sockets.failing = [.connect: EINPROGRESS]
        #expect(t.perform(.connect, on: tuple) == CallResult(value: -1, errno: EINPROGRESS))
        #expect(sockets.calls.last == .connect(fd(101), SocketAddress(Self.testerIP, 30000)))
        sockets.failing = [.receive: EAGAIN]
        #expect(t.perform(.recv(5), on: tuple) == CallResult(value: -1, errno: EAGAIN))
        #expect(sockets.calls.last == .receive(fd(101), 5))

        let other = Tuple(targetPort: 10001, testerPort: 30001)
        sockets.failing = [.accept: EAGAIN]
        #expect(t.perform(.listen(backlog: 1), on: other) == CallResult(value: 0))
        #expect(t.perform(.accept, on: other) == CallResult(value: -1, errno: EAGAIN))
        #expect(t.sockets[other]?.listener == fd(102))
        #expect(t.perform(.accept, on: tuple) == CallResult(value: -1, errno: EBADF))
    }

    @Test("abort lingers 0 s then closes; a failed linger leaves the socket open")
    func abort() {
        let sockets = RecordingSockets()
        var t = table(sockets)
        _ = t.perform(.connect, on: tuple)
        sockets.failing = [.linger: EINVAL]
        #expect(t.perform(.abort, on: tuple) == CallResult(value: -1, errno: EINVAL))
        #expect(t.sockets[tuple]?.connection == fd(100))
        sockets.failing = [:]
        #expect(t.perform(.abort, on: tuple) == CallResult(value: 0))
        #expect(Array(sockets.calls.suffix(2)) == [.linger(fd(100), 0), .close(fd(100))])
        #expect(t.sockets.isEmpty)
    }

    @Test("setsockopt by name: known options set, SO_LINGER through linger, others ENOPROTOOPT without a call")
    func options() {
        let sockets = RecordingSockets()
        var t = table(sockets)
        #expect(t.perform(.setsockopt("TCP_MAXSEG", 1000), on: tuple) == CallResult(value: -1, errno: EBADF))
        _ = t.perform(.listen(backlog: 1), on: tuple)
        let before = sockets.calls.count
        #expect(t.perform(.setsockopt("TCP_MAXSEG", 1000), on: tuple) == CallResult(value: 0))
        #expect(t.perform(.setsockopt("SO_RCVBUF", 4096), on: tuple) == CallResult(value: 0))
        #expect(t.perform(.setsockopt("SO_LINGER", 5), on: tuple) == CallResult(value: 0))
        #expect(t.perform(.setsockopt("IP_TOS", 1), on: tuple) == CallResult(value: -1, errno: ENOPROTOOPT))
        #expect(Array(sockets.calls.dropFirst(before)) == [.option(fd(100), .maxSegment, 1000), .option(fd(100), .receiveBuffer, 4096), .linger(fd(100), 5)])
    }

    @Test("release lets go of both sockets whatever fails, and succeeds")
    func release() {
        let sockets = RecordingSockets()
        var t = table(sockets)
        _ = t.perform(.listen(backlog: 1), on: tuple)
        _ = t.perform(.accept, on: tuple)
        _ = t.perform(.listen(backlog: 1), on: tuple)
        sockets.failing = [.close: EIO, .linger: EINVAL]
        let before = sockets.calls.count
        #expect(t.perform(.release, on: tuple) == CallResult(value: 0))
        #expect(Array(sockets.calls.dropFirst(before)) == [.close(fd(102)), .linger(fd(101), 0), .close(fd(101))])
        #expect(t.sockets.isEmpty)
    }

    @Test("a virtual clock moves only when advanced or slept on")
    func virtualClock() {
        let clock = VirtualClock(start: 10)
        #expect(clock.now == 10)
        clock.advance(by: 0.5)
        clock.sleep(2)
        #expect(clock.now == 12.5)
        let monotonic = MonotonicClock()
        let a = monotonic.now
        monotonic.sleep(0.001)
        #expect(monotonic.now > a)
    }

    /// A link whose captured frames are given in advance.
    final class ScriptedLink: FrameLink, @unchecked Sendable {
        var frames: [Frame]
        init(_ frames: [[UInt8]]) { self.frames = frames.map { Frame(time: 0, bytes: $0, direction: .captured) } }
        var linkType: LinkType { .ethernet }
        func inject(_ bytes: [UInt8]) throws {}
        func next(timeout: Double) -> Frame? { frames.isEmpty ? nil : frames.removeFirst() }
    }

    @Test("the barrier probe: the frames before its reply, a late reply to an earlier probe skipped, nil without one")
    func barrierProbe() throws {
        let target = try ReferenceTarget(profile: "rfc9293", specDirectory: Repository.specDirectory)
        var probe = BarrierProbe()
        let first = probe.next(to: target), second = probe.next(to: target)
        #expect(second.seq == first.seq &+ 1)
        let syn = try Packet.decode(second.frame, link: .ethernet)
        #expect(syn.tcp.flags == .syn && syn.tcp.sourcePort == BarrierProbe.testerPort && syn.tcp.destinationPort == BarrierProbe.targetPort)

        func reply(from port: UInt16, to peer: UInt16, ack: UInt32) -> [UInt8] {
            Packet(ethernet: EthernetHeader(destination: target.testerMAC, source: target.targetMAC),
                   ip: .v4(IPv4Header(source: target.targetIP, destination: target.testerIP)),
                   tcp: TCPHeader(sourcePort: port, destinationPort: peer, seq: 0, ack: ack, flags: [.rst, .ack])).encode()
        }
        let a = reply(from: 10000, to: 30000, ack: 5), b = reply(from: 10001, to: 30001, ack: 6)
        let late = reply(from: 9, to: 1, ack: first.seq &+ 1), answer = reply(from: 9, to: 1, ack: second.seq &+ 1)
        let link = ScriptedLink([a, late, b, answer, a])
        let clock = VirtualClock()
        let got = BarrierProbe.frames(before: second.seq, on: link, clock: clock, within: 2)
        #expect(got?.map(\.bytes) == [a, b])
        #expect(link.frames.count == 1)
        #expect(BarrierProbe.frames(before: second.seq, on: ScriptedLink([a, late]), clock: clock, within: 2) == nil)

        // A busy stack: a frame every 100 ms for 3 s before the reply. Waited for while it sends (it is processing
        // frames), the probe sent again every half second meanwhile (6 times in 3.1 s); a stack that keeps sending past 4 × within
        // without answering is given up.
        final class Busy: FrameLink, @unchecked Sendable {
            var frames: [[UInt8]]
            let clock: VirtualClock
            init(_ frames: [[UInt8]], _ clock: VirtualClock) { (self.frames, self.clock) = (frames, clock) }
            var linkType: LinkType { .ethernet }
            func inject(_ bytes: [UInt8]) throws {}
            func next(timeout: Double) -> Frame? {
                guard !frames.isEmpty else { clock.advance(by: timeout); return nil }
                clock.advance(by: 0.1)
                return Frame(time: clock.now, bytes: frames.removeFirst(), direction: .captured)
            }
        }
        var resends = 0
        let busy = Busy(Array(repeating: a, count: 30) + [answer], VirtualClock())
        #expect(BarrierProbe.frames(before: second.seq, on: busy, clock: busy.clock, within: 2, resend: { resends += 1 })?.count == 30)
        #expect(resends == 6, "\(resends)")
        let endless = Busy(Array(repeating: a, count: 200) + [answer], VirtualClock())
        #expect(BarrierProbe.frames(before: second.seq, on: endless, clock: endless.clock, within: 2) == nil)
        #expect(abs(endless.clock.now - 8) < 0.2, "\(endless.clock.now)")
    }
}
