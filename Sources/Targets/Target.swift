import Core
import Foundation
import Link
import Spec
import Wire

/// What a target offers: tcpspec adapts to it (no state report: judge on segments alone).
public struct Capabilities: Hashable, Sendable {
    public var calls: Set<String>
    public var reportsState: Bool
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
    func state(of tuple: Tuple) throws -> TCPState?
    /// The states of many connections at once.
    func states(of tuples: [Tuple]) throws -> [Tuple: TCPState?]
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
    /// How far the stack's timers may stray from their windows as measured here (their granularity and the
    /// capture's): every timed verdict states it.
    var timerMargin: TimerMargin { get }
    /// Now, on the clock the captured frames' times are on (libpcap stamps them with the wall clock).
    var frameNow: Double { get }
    /// What one round (a step: its action, barrier and state query) costs on `clock` beyond the time it takes: a
    /// virtual clock's charge (0 on a real one). A case runner charges it per step, so a kept case replays on the
    /// time the run that found it kept.
    var roundCost: Double { get }
    /// Why the stack's timers are not judged (its description slows them), or nil when they are.
    var timersNotJudged: String? { get }
    /// Retransmissions after which the stack may give up a connection the application closed (Linux's
    /// `net.ipv4.tcp_orphan_retries`), if it has such a limit.
    var orphanRetries: Int? { get }
    /// Timer lengths the stack was configured with, away from the defaults its own profile states (`profile`):
    /// under that profile they replace its timing lines; under an RFC's they change nothing.
    var timingSettings: (profile: String, timings: [TimingName: Timing])? { get }
    /// Timer lengths the application set on its sockets (its R2: TCP_USER_TIMEOUT): they replace the timing lines
    /// of every profile, the RFC's too, since the RFC lets the application choose them.
    var applicationTimings: [TimingName: Timing] { get }
    /// What the application sets on every socket (R2, keep-alives), as a case records it.
    var socketSettings: SocketSettings { get }
    /// The stack may hold an acknowledgment back (a delayed ACK, RFC 9293 §3.8.6.3): the ACK of text or a FIN it
    /// took is judged when it comes, against the profile's `timing delayed-ack`, not at the step's barrier.
    var delaysAcknowledgments: Bool { get }
    /// How the stack failed, if it has, found without waiting (an agent that exited): what a step that merely saw
    /// no segment reports instead, so that a crash on a case's last step is not taken for silence.
    func failure() -> TargetFailure?
}

/// What one round of many connections did: each call's result, every frame the target sent, each state.
public struct Exchange: Sendable {
    public var results: [CallResult]
    public var frames: [Frame]
    public var states: [Tuple: TCPState?]
}

extension Target {
    /// A stack in this process or the kernel does not fail as a program.
    public func failure() -> TargetFailure? { nil }

    public var frameNow: Double { Sys.wallClockNow() }

    /// Real time passes by itself.
    public var roundCost: Double { 0 }

    public var timingSettings: (profile: String, timings: [TimingName: Timing])? { nil }

    public var timersNotJudged: String? { nil }

    public var applicationTimings: [TimingName: Timing] { [:] }

    public var socketSettings: SocketSettings { SocketSettings() }

    /// Stacks acknowledge at once unless set otherwise (Linux's route has `quickack 1`).
    public var delaysAcknowledgments: Bool { false }

    public var orphanRetries: Int? { nil }

    /// The spec a run judges this target with: `spec`, with the timings the stack was set to where `spec` is its
    /// own profile (or one extending it).
    public func judgingSpec(_ spec: CompiledSpec) -> CompiledSpec {
        var spec = spec
        if let (p, t) = timingSettings, !t.isEmpty, spec.lineage.contains(p) { spec = spec.replacingTimings(t) }
        let app = applicationTimings
        return app.isEmpty ? spec : spec.replacingTimings(app)
    }

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
