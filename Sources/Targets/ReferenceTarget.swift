import Core
import Foundation
import Link
import Model
import Spec
import Wire

/// The model itself as a TCP stack over a virtual link: no privileges, no kernel, deterministic. Each
/// connection (tuple) is a `TCPModel`; frames injected are decoded and handed to it, its segments come back as
/// frames. With a fault (a spec overlay that breaks one rule) it is a stack with a known bug: the fuzzer's own
/// test bench.
public final class ReferenceTarget: Target, @unchecked Sendable {
    public let spec: CompiledSpec
    public let fault: ReferenceFault?
    /// What the stack does with a segment whose options have an illegal length (MUST-7: its choice, short of crashing).
    public var illegalOptionLength: IllegalOptionLength = .process

    public enum IllegalOptionLength: Sendable, CaseIterable {
        /// Reads the options before it and processes the segment (Linux, lwIP).
        case process
        /// Drops the segment (PyTCP's integrity check).
        case drop
        /// Resets the connection, RFC 9293's "suggested procedure" (ABORT), in a synchronized state; elsewhere drops.
        case reset
    }
    private let virtual = VirtualLink()
    public var link: FrameLink { virtual }
    /// The stack's time: it moves when the tester waits (and by `roundTime` each exchange), so timer tests take
    /// no wall time and runs are identical to the byte.
    public let virtualClock = VirtualClock(start: 1_000_000)
    public var clock: any Timekeeper { virtualClock }
    public var frameNow: Double { virtualClock.now }
    /// Its timers fire exactly when due, and what they send is stamped then: no margin.
    public var timerMargin: TimerMargin { .exact }
    /// What one exchange costs on the virtual clock: waiting lanes come due while others keep the stack busy.
    public static let roundTime = 0.001
    public var roundCost: Double { Self.roundTime }
    /// When each connection's running timers were (re)started (virtual time).
    private var timerStarts: [Tuple: [TimerName: Double]] = [:]
    /// When each connection's next timer fires (virtual time), kept beside `timerStarts`.
    private var nextDue: [Tuple: Double] = [:]
    private var connections: [Tuple: TCPModel] = [:]
    /// The tuples whose application listener is open (listened, neither accepted from nor closed).
    private var listening: Set<Tuple> = []
    /// The MSS each peer's SYN offered (RFC 9293 §3.7.1; none: 536, MUST-15): the largest segment sent to it.
    private var peerMSS: [Tuple: UInt32] = [:]
    /// The stack delays acknowledgments (RFC 9293 §3.8.6.3): the pure ACK of text or a FIN it took goes this long
    /// after it (virtual time) unless a segment it sends first carries it. nil: it acknowledges at once.
    public let ackDelay: Double?
    public var delaysAcknowledgments: Bool { ackDelay != nil }
    /// The delay `--delayed-acks` gives it: Linux's longest (TCP_DELACK_MAX).
    public static let defaultAckDelay = 0.2
    /// Per connection, the ACK held back (the latest) and when it goes (from the first held).
    private var heldAcks: [Tuple: (segment: Segment, due: Double)] = [:]
    private let lock = NSLock()
    /// A fault that shows only now and then, as a timing-dependent behaviour does: the first `faultyConnections`
    /// connections follow the faulty spec, later ones `cleanSpec` (tests of the oracle's replay confirmation).
    public var faultyConnections: Int?
    public var cleanSpec: CompiledSpec?
    private var connectionsSeen = 0
    public let testerMAC = MACAddress.local(0x0000_0101)
    public let targetMAC = MACAddress.local(0x0000_0102)
    public let testerIP = IPAddress("192.0.2.1")!
    public let targetIP = IPAddress("192.0.2.2")!

    public var capabilities: Capabilities {
        Capabilities(calls: ["listen", "connect", "accept", "send", "recv", "shutdown", "close", "abort"], reportsState: true)
    }
    public var settings: [(String, String)] {
        [("target", "reference"), ("profile", spec.profile), ("fault", fault?.name ?? "none")] + (keepalive.map { [("keep-alive", $0.text)] } ?? [])
            + (ackDelay.map { [("delayed ACKs", Durations.text($0))] } ?? [])
    }

    /// The application's R2 on every socket (as Linux's TCP_USER_TIMEOUT): the stack's own and the judging spec's.
    public private(set) var userTimeout: Double?

    /// Keep-alives the application turned on for every socket.
    public private(set) var keepalive: KeepaliveSetting?

    public var applicationTimings: [TimingName: Timing] { Self.application(userTimeout, keepalive) }

    public var socketSettings: SocketSettings { SocketSettings(userTimeout: userTimeout, keepalive: keepalive) }

    static func application(_ userTimeout: Double?, _ keepalive: KeepaliveSetting?) -> [TimingName: Timing] {
        var t = userTimeout.map { Timing.applicationR2($0, setting: "user timeout \(Durations.text($0))") } ?? [:]
        if let k = keepalive {
            t.merge(Timing.applicationKeepalive(idle: k.idle, interval: k.interval, probes: k.probes, setting: "keep-alive \(k.text)")) { a, _ in a }
        }
        return t
    }

    /// - Parameters:
    ///   - profile: the behaviour the reference stack has (before the fault).
    ///   - fault: one of `ReferenceFault.all`, or nil for a stack that follows the profile exactly.
    ///   - userTimeout: the application's R2 (seconds) on every socket, which a profile's R2 has no upper bound
    ///     for: the USER-TIMEOUT tests are reached.
    ///   - keepalive: keep-alives on every socket (off by default, MUST-25).
    ///   - ackDelay: how long the stack holds the ACK of text or a FIN back (a delayed ACK); nil: at once.
    public init(profile: String, specDirectory: String, fault: ReferenceFault? = nil, userTimeout: Double? = nil,
                keepalive: KeepaliveSetting? = nil, ackDelay: Double? = nil) throws {
        let result: SpecCompiler.Result
        if let fault {
            let (asts, diags) = SpecLoader.loadDirectory(specDirectory)
            let (overlay, odiags) = SpecLoader.parse(path: "fault-\(fault.name).tcpspec", text: fault.overlay(extending: profile))
            var r = SpecCompiler.compile(profile: "fault-\(fault.name)", files: asts + [overlay])
            r.diagnostics = SpecCompiler.attachSourceLines(diags + odiags + r.diagnostics, files: asts + [overlay])
            if !r.diagnostics.isEmpty { r.spec = nil }
            result = r
        } else {
            result = SpecLoader.compile(profile: profile, directory: specDirectory)
        }
        guard let spec = result.spec else {
            throw ReferenceError(description: "the reference target's spec does not compile:\n" + result.diagnostics.map(\.rendered).joined(separator: "\n"))
        }
        self.userTimeout = userTimeout
        // A keep-alive fault shows only with keep-alives on.
        let keepalive = keepalive ?? fault?.keepalive
        self.keepalive = keepalive
        let app = Self.application(userTimeout, keepalive)
        self.spec = app.isEmpty ? spec : spec.replacingTimings(app)
        self.fault = fault
        self.ackDelay = ackDelay ?? fault?.ackDelay
    }

    /// A reference stack that follows an already compiled spec exactly (replays in bulk compile it once).
    public init(spec: CompiledSpec, ackDelay: Double? = nil) {
        self.spec = spec
        self.fault = nil
        self.ackDelay = ackDelay
    }

    /// The ISN the reference stack picks for a connection: fixed per tuple, like a keyed ISN generator.
    static func iss(_ t: Tuple) -> UInt32 { UInt32(t.targetPort) &* 0x0101_0000 &+ UInt32(t.testerPort) &* 7919 }

    private func model(_ t: Tuple) -> TCPModel {
        if let m = connections[t] { return m }
        connectionsSeen += 1
        let use = faultyConnections.map { connectionsSeen > $0 } == true ? (cleanSpec ?? spec) : spec
        var m = TCPModel(spec: use, configuration: .init(receiveWindow: 65535))
        m.recordsInputClass = false
        return m
    }

    /// Keeps a connection after a transition, and when its timers (re)started (`at`: virtual time).
    private func store(_ m: TCPModel, _ t: Tuple, _ tr: Transition, at: Double? = nil) {
        var m = m
        // A connection that ends before its listener is accepted from leaves the port listening (`listenAgain`).
        m.listenAgain(listenerOpen: listening.contains(t))
        // A connection back in CLOSED holds nothing: forget it, as the stack deletes the TCB.
        if m.state == spec.initialState {
            connections[t] = nil
            peerMSS[t] = nil
            timerStarts[t] = nil
            nextDue[t] = nil
            heldAcks[t] = nil
            return
        }
        connections[t] = m
        var starts = timerStarts[t] ?? [:]
        for x in TimerName.allCases {
            if tr.timersStarted & (1 << x.rawValue) != 0 { starts[x] = at ?? virtualClock.now }
            if !m.timers.isRunning(x) { starts[x] = nil }
        }
        timerStarts[t] = starts
        nextDue[t] = Self.due(m, starts)?.at
    }

    /// The connection's next timer to fire, and when: the earliest its window allows (the latest when only that is
    /// bounded).
    private static func due(_ m: TCPModel, _ starts: [TimerName: Double]) -> (timer: TimerName, at: Double)? {
        m.pendingExpiries().compactMap { x, w -> (TimerName, Double)? in
            guard let d = w.lower ?? w.upper, let from = starts[x] else { return nil }
            return (x, from + d)
        }.min { $0.1 < $1.1 }
    }

    /// Expires every timer due by now, in time order per connection (connections in tuple order): each fires at
    /// the earliest its window allows (the latest when only that is bounded), and what it sends is stamped then.
    private func expireTimers() {
        let now = virtualClock.now
        for (t, h) in heldAcks.filter({ $0.value.due <= now }).sorted(by: { ($0.value.due, $0.key.targetPort, $0.key.testerPort) < ($1.value.due, $1.key.targetPort, $1.key.testerPort) }) {
            heldAcks[t] = nil
            var o = SmallList<Output>()
            o.append(Output(segment: h.segment, rule: 0, seqSymbolic: false, windowSymbolic: false))
            send(o, t, at: h.due)
        }
        // Only the connections with a timer due (a zero-window probe runs for ever: most hold one that is not).
        for t in nextDue.filter({ $0.value <= now }).keys.sorted(by: { ($0.targetPort, $0.testerPort) < ($1.targetPort, $1.testerPort) }) {
            for _ in 0..<64 {
                guard var m = connections[t] else { break }
                guard let (x, at) = Self.due(m, timerStarts[t] ?? [:]), at <= now else { break }
                let tr = m.apply(.timeout(Timeout(x)))
                send(tr.outputs, t, at: at)
                store(m, t, tr, at: at)
            }
        }
    }

    /// Sends the model's outputs, each text run cut into segments of at most the peer's MSS (the model emits a run
    /// as one output; FIN and PSH go with its last piece).
    private func send(_ outputs: SmallList<Output>, _ t: Tuple, at: Double? = nil) {
        let mss = max(1, peerMSS[t] ?? 536)
        for o in outputs {
            let s = o.segment
            // Whatever carries the held ACK's acknowledgment sends it.
            if let h = heldAcks[t], s.ctl.contains(.ack), !TCPModel.seqLess(s.ack, h.segment.ack) { heldAcks[t] = nil }
            var offset: UInt32 = 0
            repeat {
                let n = min(mss, s.dataLength - offset)
                let last = offset + n == s.dataLength
                var flags = s.ctl
                if !last { flags.subtract([.fin, .psh]) }
                if offset > 0 { flags.remove(.syn) }
                let seq = s.seq &+ offset &+ (offset > 0 && s.ctl.contains(.syn) ? 1 : 0)
                var tcp = TCPHeader(sourcePort: t.targetPort, destinationPort: t.testerPort, seq: seq, ack: s.ack, flags: flags, window: UInt16(clamping: s.window))
                tcp.payload = [UInt8](repeating: 0x72, count: Int(n))
                let ip: IPHeader = .v4(IPv4Header(source: targetIP, destination: testerIP))
                virtual.deliver(Packet(ethernet: EthernetHeader(destination: testerMAC, source: targetMAC), ip: ip, tcp: tcp).encode(), at: at ?? virtualClock.now)
                offset += n
            } while offset < s.dataLength
        }
    }

    public func inject(_ frames: [[UInt8]]) throws {
        lock.lock()
        defer { lock.unlock() }
        expireTimers()
        for f in frames {
            // What a stack does with a frame it cannot parse: nothing.
            guard let p = try? Packet.decode(f, link: .ethernet), p.tcp.checksumValid != false else { continue }
            if fault?.dropsUnknownOptions == true, p.tcp.options.contains(where: { if case .unknown = $0 { true } else { false } }) { continue }
            let t = Tuple(targetPort: p.tcp.destinationPort, testerPort: p.tcp.sourcePort)
            if illegalOptionLength != .process, TCPOptionScan.scan(p.tcp).fault?.illegalLength == true {
                var m = model(t)
                guard illegalOptionLength == .reset, spec.states[m.state].synchronized else { continue }
                let tr = m.call(.abort, iss: Self.iss(t))
                send(tr.outputs, t)
                store(m, t, tr)
                continue
            }
            if p.tcp.flags.contains(.syn) { peerMSS[t] = TCPOptionScan.scan(p.tcp).mss.map(UInt32.init) ?? 536 }
            var m = model(t)
            let taken = m.core.receiveNext
            let tr = m.receive(p.tcp.segment, iss: Self.iss(t))
            var outputs = tr.outputs
            if let d = ackDelay, m.core.receiveNext != taken,
               let i = outputs.firstIndex(where: { $0.segment.ctl == .ack && $0.segment.dataLength == 0 }) {
                // The ACK of what it took waits (from the first one held), unless something sent meanwhile carries it.
                let ack = outputs[i].segment
                // Every copy (two rules of one input may each acknowledge) is the one ACK held.
                while let j = outputs.firstIndex(where: { $0.segment.ctl == .ack && $0.segment.dataLength == 0 && $0.segment.ack == ack.ack }) { outputs.remove(at: j) }
                send(outputs, t)
                if !outputs.contains(where: { $0.segment.ctl.contains(.ack) && !TCPModel.seqLess($0.segment.ack, ack.ack) }) {
                    heldAcks[t] = (ack, heldAcks[t]?.due ?? virtualClock.now + d)
                }
            } else {
                send(outputs, t)
            }
            store(m, t, tr)
        }
    }

    public func barrier() throws -> [Frame] {
        lock.lock()
        expireTimers()
        lock.unlock()
        return virtual.drain()
    }

    public func call(_ c: SocketCall, on t: Tuple) throws -> CallResult {
        lock.lock()
        defer { lock.unlock() }
        expireTimers()
        var m = model(t)
        let call: UserCall
        switch c {
        case .listen: call = .openPassive
        case .connect: call = .openActive
        case .send(let n): call = .send(UInt32(n))
        case .recv(let n): call = .receive(UInt32(n))
        case .close: call = .close
        case .abort: call = .abort
        case .accept:
            guard spec.states[m.state].synchronized else { return CallResult(value: -1, errno: EAGAIN) }
            listening.remove(t)  // one connection per listener, as the Linux target's
            return CallResult(value: 0)
        case .shutdown(.wr), .shutdown(.rdwr): call = .shutdown
        case .shutdown(.rd), .setsockopt: return CallResult(value: 0)
        case .release:
            listening.remove(t)
            connections[t] = nil
            peerMSS[t] = nil
            timerStarts[t] = nil
            nextDue[t] = nil
            heldAcks[t] = nil
            return CallResult(value: 0)
        }
        let tr = m.call(call, iss: Self.iss(t))
        if c == .close || c == .abort { listening.remove(t) }
        if case .listen = c, spec.states[m.state].state == .listen { listening.insert(t) }
        send(tr.outputs, t)
        store(m, t, tr)
        switch (c, tr.reply.map(spec.reply) ?? .ok) {
        case (.connect, .ok): return CallResult(value: -1, errno: EINPROGRESS)
        case (.send(let n), .ok): return CallResult(value: n)
        case (.recv, .ok): return CallResult(value: Int(tr.delivered))
        case (.recv, .queued): return CallResult(value: -1, errno: EAGAIN)
        case (_, .ok), (_, .queued), (_, .state): return CallResult(value: 0)
        case (_, .error(let e)): return CallResult(value: -1, errno: e.errno)
        }
    }

    public func state(of t: Tuple) throws -> TCPState? {
        lock.lock()
        defer { lock.unlock() }
        expireTimers()
        return spec.states[model(t).state].state
    }

    public func states(of tuples: [Tuple]) throws -> [Tuple: TCPState?] {
        var out: [Tuple: TCPState?] = [:]
        for t in tuples { out[t] = try state(of: t) }
        return out
    }

    public func exchange(calls: [(SocketCall, Tuple)], inject frames: [[UInt8]], states tuples: [Tuple]) throws -> Exchange {
        // The round runs at the time the tester read before it (its `frameNow`), and costs its time after: a timer
        // a step starts is dated alike on both sides, whether the step made the stack send anything or not.
        defer { virtualClock.advance(by: Self.roundTime) }
        return try exchangeInSteps(calls: calls, inject: frames, states: tuples)
    }

    public func close() { virtual.close() }
}

struct ReferenceError: Error, CustomStringConvertible {
    var description: String
}

/// An in-memory link: what the reference stack sends waits here until the tester reads it.
final class VirtualLink: FrameLink, @unchecked Sendable {
    private var queue: [Frame] = []
    private let lock = NSLock()
    var linkType: LinkType { .ethernet }

    func deliver(_ bytes: [UInt8], at time: Double) {
        lock.lock()
        queue.append(Frame(time: time, bytes: bytes, direction: .captured))  // the stack's (virtual) time
        lock.unlock()
    }

    func inject(_ bytes: [UInt8]) throws {
        throw ReferenceError(description: "inject through the target, which decodes and processes frames")
    }

    func next(timeout: Double) -> Frame? {
        lock.lock()
        defer { lock.unlock() }
        return queue.isEmpty ? nil : queue.removeFirst()
    }

    func drain() -> [Frame] {
        lock.lock()
        defer { lock.unlock() }
        let q = queue
        queue.removeAll()
        return q
    }

    func close() { _ = drain() }
}
