import Core
import Foundation
import Fuzzer
import Link
import Report
import Spec
import Targets
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Verdicted cases per second against Linux, how coverage grows, and the process's RSS over the run. Speed is
/// also given as a ratio to the raw SYN→RST ping-pong (`LinkBench.RawPingPong`) on the same veth, measured in
/// the same run just before and just after the fuzzing, so that the machine's state counts on both sides.
enum FuzzBench {
    static func rssMiB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for l in s.split(separator: "\n") where l.hasPrefix("VmRSS:") {
            return (Double(l.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
        }
        return 0
    }

    /// Goals of issue 15: a fuzz step costs at most two raw round trips; 5,000 verdicted cases/s.
    static let stepsPerRoundTripGoal = 0.5
    static let casesPerSecondGoal = 5000.0
    /// Seconds of raw ping-pong before and after the fuzzing.
    static let rawSeconds = 2.0

    static func met(_ ok: Bool) -> String { ok ? "met" : "not met" }

    static func run(spec: CompiledSpec, seconds: Double) throws {
        let linux = try LinuxTarget()
        defer { linux.close() }
        // The raw socket is open only while it measures: open, it would get a copy of every frame of the fuzzing.
        func raw(warmUp: Bool) throws -> (Double, Int) {
            let pingPong = try LinkBench.RawPingPong(linux)
            defer { pingPong.close() }
            if warmUp { _ = pingPong.rate(seconds: 0.3) }  // neighbour entries, caches
            return pingPong.rate(seconds: rawSeconds)
        }
        let (rawBefore, lostBefore) = try raw(warmUp: true)
        // The capture saw the ping-pong's RSTs (as many as its buffer holds): read them off, then pass a barrier,
        // before the fuzzer's first round.
        while linux.link.next(timeout: 0) != nil {}
        _ = try linux.barrier()

        let target = TimedTarget(linux)
        var c = Fuzzer.Configuration()
        c.seed = 1
        c.duration = seconds
        c.minimize = false
        c.proveUniverse = true
        let fuzzer = Fuzzer(spec: spec, target: target, configuration: c)
        var samples: [(Double, Int, Double)] = []
        let rss0 = rssMiB()
        let mainCPU0 = TimedTarget.threadCPU(), targetCPU0 = try linux.topology.target.run { TimedTarget.threadCPU() }
        let s = try fuzzer.run { p in
            if samples.last.map({ p.seconds - $0.0 >= 0.25 }) ?? true { samples.append((p.seconds, p.cellsCovered, rssMiB())) }
        }
        let mainCPU = TimedTarget.threadCPU() - mainCPU0, targetCPU = try linux.topology.target.run { TimedTarget.threadCPU() } - targetCPU0
        let (rawAfter, lostAfter) = try raw(warmUp: false)

        // The better of the two raw figures (as `link` takes the best): the machine's other load only ever lowers it.
        let steps = Double(s.steps) / s.seconds
        let rawRate = max(rawBefore, rawAfter)
        let ratio = steps / rawRate
        print(String(format: "fuzz linux/%@ speed: %.0f steps/s, %.0f raw round trips/s (SYN→RST, raw AF_PACKET on the same veth, the better of %.0f s before, %.0f/s, and after, %.0f/s; lost %d); steps/s ÷ raw round trips/s %.2f (goal >= %.1f: %@); %.0f verdicted cases/s (goal >= %.0f: %@)",
                     spec.profile, steps, rawRate, rawSeconds, rawBefore, rawAfter, lostBefore + lostAfter, ratio, stepsPerRoundTripGoal, met(ratio >= stepsPerRoundTripGoal),
                     s.casesPerSecond, casesPerSecondGoal, met(s.casesPerSecond >= casesPerSecondGoal)))
        // Where a step's time goes: the fuzzer's own thread outside the exchange (planning, model, oracle,
        // frames), the exchange as the fuzzer waits for it, and within it the target thread's CPU (calls,
        // injection and the kernel's processing, capture, sock_diag); the rest of the exchange is waiting
        // (thread hops, scheduling).
        let n = Double(max(s.steps, 1)), us = 1e6 / n
        let outside = s.seconds - target.exchangeWall
        print(String(format: "fuzz linux/%@ time per step: %.1f µs wall = fuzzer thread outside the exchange %.1f µs (%.1f µs CPU) + exchange %.1f µs (target thread %.1f µs CPU, fuzzer thread %.1f µs CPU; %d rounds, %.1f steps a round)",
                     spec.profile, s.seconds * us, outside * us, (mainCPU - target.exchangeCPU) * us, target.exchangeWall * us, targetCPU * us, target.exchangeCPU * us,
                     target.rounds, n / Double(max(target.rounds, 1))))
        // When coverage stopped growing: the time of the first sample with the final count.
        let plateau = samples.first { $0.1 >= s.cellsCovered }?.0 ?? s.seconds
        // How coverage grows: classes covered by 1, 2, 5, 10 and 20 s (and the end).
        let marks = [1.0, 2, 5, 10, 20].filter { $0 < s.seconds }
        let curve = marks.map { t in "\(Int(t)) s \(samples.last { $0.0 <= t + 0.01 }?.1 ?? 0)" } + ["end \(s.cellsCovered)"]
        let rss = samples.map(\.2)
        print(String(format: "fuzz linux/%@: %d cases, %d steps in %.1f s; coverage %d of %d input classes (%d more proven unreachable, left out), reached at %.1f s (goal: every reachable class within 5 s); RSS %.1f MiB at start, %.1f–%.1f MiB during, %.1f MiB at end (goal <= 100 MiB, flat); %d divergences (not minimized)",
                     spec.profile, s.cases, s.steps, s.seconds, s.cellsCovered, s.cellsTotal, s.cellsProven, plateau, rss0, rss.min() ?? 0, rss.max() ?? 0, rssMiB(), s.divergences.count))
        // "Every reachable class" is not known in advance: the run's own final count stands for it (a longer
        // run, `--seconds 600`, is a better estimate), and the times to 90, 95 and 99% of it are printed.
        let reach = [0.90, 0.95, 0.99].map { f in
            String(format: "%.0f%% at %.1f s", f * 100, samples.first { Double($0.1) >= f * Double(s.cellsCovered) }?.0 ?? s.seconds)
        }
        print("fuzz linux/\(spec.profile): classes covered by time: \(curve.joined(separator: ", ")); of the run's \(s.cellsCovered): \(reach.joined(separator: ", "))")
        // Timer cells in the mix: the same seed again with no waits at all, in the same run, as the ratio's base.
        var quiet = c
        quiet.maxWait = 0
        // The ping-pong's RSTs the capture saw: read off before the second run, as before the first.
        while linux.link.next(timeout: 0) != nil {}
        _ = try linux.barrier()
        let q = try Fuzzer(spec: spec, target: linux, configuration: quiet).run()
        let r = s.casesPerSecond / max(q.casesPerSecond, 1)
        print(String(format: "fuzz linux/%@ with timer waits: %.0f cases/s (%d waits made); without waits: %.0f cases/s; ratio %.2f (goal 0.90-1.10: %@)",
                     spec.profile, s.casesPerSecond, s.waits, q.casesPerSecond, r, met(r >= 0.9 && r <= 1.1)))
    }
}

/// A target as it is, with the time the fuzzer spends in its exchanges counted (wall, and the calling thread's CPU).
final class TimedTarget: Target, @unchecked Sendable {
    let inner: Target
    private(set) var exchangeWall = 0.0
    private(set) var exchangeCPU = 0.0
    private(set) var rounds = 0

    init(_ inner: Target) { self.inner = inner }

    static func threadCPU() -> Double { Sys.threadCPUTime() }

    var clock: any Timekeeper { inner.clock }
    var timerMargin: TimerMargin { inner.timerMargin }
    var frameNow: Double { inner.frameNow }

    func exchange(calls: [(SocketCall, Tuple)], inject frames: [[UInt8]], states tuples: [Tuple]) throws -> Exchange {
        // Wall time, whatever the stack's clock (the reference stack's is virtual).
        let w0 = Sys.monotonicNow(), c0 = TimedTarget.threadCPU()
        defer {
            exchangeWall += Sys.monotonicNow() - w0
            exchangeCPU += TimedTarget.threadCPU() - c0
            rounds += 1
        }
        return try inner.exchange(calls: calls, inject: frames, states: tuples)
    }

    var capabilities: Capabilities { inner.capabilities }
    var link: FrameLink { inner.link }
    var testerMAC: MACAddress { inner.testerMAC }
    var targetMAC: MACAddress { inner.targetMAC }
    var testerIP: IPAddress { inner.testerIP }
    var targetIP: IPAddress { inner.targetIP }
    var settings: [(String, String)] { inner.settings }
    func call(_ c: SocketCall, on tuple: Tuple) throws -> CallResult { try inner.call(c, on: tuple) }
    func state(of tuple: Tuple) throws -> TCPState? { try inner.state(of: tuple) }
    func states(of tuples: [Tuple]) throws -> [Tuple: TCPState?] { try inner.states(of: tuples) }
    func inject(_ frames: [[UInt8]]) throws { try inner.inject(frames) }
    func barrier() throws -> [Frame] { try inner.barrier() }
    func close() { inner.close() }
    func restart() throws { try inner.restart() }
    func failure() -> TargetFailure? { inner.failure() }
}

/// The whole conformance suite against Linux: wall time from target start to report (goal <= 10 s).
enum ConformBench {
    /// The suite twice (keep-alive on: 1 s idle, 1 s interval): with the default longest wait (5 s: Linux's 60 s TIME-WAIT only checked early) and with
    /// 70 s (its expiry judged, the wait overlapping the other tests).
    static func run(spec: CompiledSpec) throws {
        for maxWait in [nil, 70.0] as [Double?] {
            let t0 = Date()
            // Keep-alive on, as .ci/run runs the suite: its column is judged too.
            let target = try LinuxTarget(Topology.Configuration(keepalive: KeepaliveSetting(idle: 1, interval: 1, probes: 3)))
            defer { target.close() }
            var c = Fuzzer.Configuration()
            c.minimize = true
            c.maxWait = maxWait
            let r = try Fuzzer(spec: spec, target: target, configuration: c).conform(warmup: 3)
            let wall = Date().timeIntervalSince(t0)
            let timers = r.results.filter { EventKind.bySpelling[$0.event]?.isTimeout == true }
            print(String(format: "conform linux/%@ --max-wait %@: %d tests in %.2f s wall (suite %.2f s; %d conform, %d diverge, %d unreachable, %d error); goal <= 90 s with timers; timer tests %d: %d conform, %d diverge, %d unreachable (%d proven)",
                         spec.profile, maxWait.map { Durations.text($0) } ?? "5s (default)", r.results.count, wall, r.seconds, r.count(.conforms), r.count(.diverges),
                         r.count(.unreachable), r.count(.error), timers.count, timers.filter { $0.verdict == .conforms }.count,
                         timers.filter { $0.verdict == .diverges }.count, timers.filter { $0.verdict == .unreachable }.count, r.provenCount))
            for t in timers where t.timers != nil { print("  \(t.state) \(t.event): \(t.verdict.rawValue): \((t.timers ?? []).joined(separator: "; "))") }
        }
    }
}
