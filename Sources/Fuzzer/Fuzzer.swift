import Core
import Foundation
import Generator
import Link
import Model
import Oracle
import Spec
import Wire
import Targets

/// A divergence found, minimized and written to the corpus.
public struct Divergence: Sendable {
    public var signature: Signature
    public var stateBefore: TCPState
    public var input: String
    public var expected: String
    public var observed: String
    public var rules: [String]
    public var citations: [String]
    public var steps: Int
    /// The tester's ISN of the run (rules may depend on it: see RFC 9293's SYN-SENT RST check).
    public var testerISN: UInt32
    public var casePath: String?
    public var pcapPath: String?
    public var log: [StepLog]
}

public struct FuzzSummary: Sendable {
    public var cases = 0
    public var steps = 0
    public var seconds = 0.0
    public var cellsCovered = 0
    public var cellsTotal = 0
    public var divergences: [Divergence] = []
    /// Times the target was started again after failing as a program.
    public var restarts = 0
    public var casesPerSecond: Double { seconds > 0 ? Double(cases) / seconds : 0 }
}

public struct FuzzProgress: Sendable {
    public var cases: Int
    public var cellsCovered: Int
    public var cellsTotal: Int
    public var divergences: Int
    public var seconds: Double
}

/// The model-based fuzzer: many connections in flight, each running a plan toward the least covered input
/// class; every step judged against the model; each new divergence minimized and kept as a case with its pcap.
public final class Fuzzer {
    public struct Configuration: Sendable {
        public var seed: UInt64 = 1
        public var duration: Double = 60
        /// Stop after this many cases (nil: run for the duration).
        public var maxCases: Int?
        public var lanes = 64
        public var corpus: String?
        public var minimize = true
        public var targetName = "linux"
        public init() {}
    }

    let spec: CompiledSpec
    let target: Target
    let config: Configuration
    /// What the run in progress stops at and keeps: the configuration's, or a conformance warm-up's.
    var limits: Limits
    var keeping: Keeping
    let planner: Planner
    var sampler: InputSampler
    var nextTuple = 0
    var signatures = KnownSignatures()
    /// When set, the first step sequence that exercised each input class (by the planner's key): conformance runs
    /// replay them to reach classes their own search does not set up.
    var witnesses: [Int: [FuzzStep]]?
    public internal(set) var summary = FuzzSummary()
    /// When set, finished cases go here instead of being judged for the corpus (differential mode).
    var onFinish: ((Lane) throws -> Void)?
    /// The run in progress: when it started, when progress was last reported, whom to report it to.
    var started = 0.0
    var lastProgress = 0.0
    var progress: ((FuzzProgress) -> Void)?

    public init(spec: CompiledSpec, target: Target, configuration: Configuration) {
        self.spec = spec
        self.target = target
        config = configuration
        limits = Limits(duration: configuration.duration, maxCases: configuration.maxCases)
        keeping = Keeping(corpus: configuration.corpus, minimize: configuration.minimize)
        planner = Planner(spec: spec, seed: configuration.seed, offered: target.capabilities.calls)
        sampler = InputSampler(seed: configuration.seed)
        summary.cellsTotal = planner.universe.count
        if let dir = configuration.corpus { signatures = KnownSignatures(corpus: dir) }
    }

    /// A tuple no earlier connection of this run used: target ports 10000-29999 (below the ephemeral range),
    /// tester ports counting up from 30000 each time the target ports wrap.
    func freshTuple() -> Tuple {
        let n = nextTuple
        nextTuple += 1
        return Tuple(targetPort: UInt16(10000 + n % 20000), testerPort: UInt16(truncatingIfNeeded: 30000 + (n / 20000) % 35000))
    }

    /// Tester ISNs from the partitions that matter: small, around 2^31, just below 2^32 (wrapping mid-case).
    func testerISN() -> UInt32 {
        switch sampler.rng.next() % 4 {
        case 0: UInt32.max &- UInt32(sampler.rng.next() % 5000)
        case 1: (1 << 31) &- UInt32(sampler.rng.next() % 5000)
        default: UInt32(truncatingIfNeeded: sampler.rng.next())
        }
    }

    func lane(_ id: Int, purpose: Lane.Purpose) -> Lane {
        let lane = Lane(id: id, tuple: freshTuple(), spec: spec, testerISN: testerISN(), offered: target.capabilities.calls, purpose: purpose)
        lane.model.recordsInputClass = true
        return lane
    }

    /// The next step of a lane's plan, or nil when the case is over.
    func nextStep(_ lane: Lane) -> FuzzStep? {
        // After a divergence the model no longer knows the target's state: the case ends there.
        if lane.diverged { return nil }
        // A passive connection is taken from the listener as soon as it is synchronized (once).
        if lane.connection.passive, !lane.connection.acceptTried, lane.connection.socketOpen, spec.states[lane.model.state].synchronized {
            return .accept
        }
        while let item = lane.plan.first {
            lane.plan.removeFirst()
            switch item {
            case .step(let s):
                if case .call(let c) = s, !lane.connection.callAllowed(c) { continue }
                return s
            case .cell(let st, let ev, let c):
                if let s = planner.input(for: lane.connection, state: st, event: ev, cell: c, sampler: &sampler) {
                    if case .conform(let test, _, let missed) = lane.purpose { lane.purpose = .conform(test: test, carriedAt: lane.steps.count, missed: missed) }
                    return s
                }
                let missed: String
                if lane.model.state != st {
                    missed = "the path to \(spec.states[st].name) ended in \(spec.states[lane.model.state].name)"
                } else if ev != .segment {
                    missed = "the sockets API has no \(ev.spelling) call here (the tester holds no socket in this state, or the call is refused before the stack sees it)"
                } else {
                    missed = "no segment of this class found: its classifiers' conditions were not met by the inputs drawn in the states the model reached"
                }
                if case .conform(let test, let at, _) = lane.purpose { lane.purpose = .conform(test: test, carriedAt: at, missed: missed) }
            case .random:
                return planner.randomStep(for: lane.connection, sampler: &sampler)
            case .stay:
                for _ in 0..<20 {
                    let s = planner.randomStep(for: lane.connection, sampler: &sampler)
                    var m = lane.model
                    if let input = lane.connection.modelInput(s) { _ = m.apply(input) }
                    if m.state == lane.model.state { return s }
                }
            }
        }
        return nil
    }

    /// Whether the run has done what it was asked (its cases, or its time).
    func done() -> Bool {
        if let m = limits.maxCases, summary.cases >= m { return true }
        return target.clock.now - started >= limits.duration
    }

    /// When a run stops: after its time, or after a number of cases.
    struct Limits {
        var duration: Double
        var maxCases: Int?
    }

    /// What a run keeps of its divergences: a corpus to write them to, minimized or not.
    struct Keeping {
        var corpus: String?
        var minimize: Bool
    }

    public func run(progress: ((FuzzProgress) -> Void)? = nil) throws -> FuzzSummary {
        try run(limits: Limits(duration: config.duration, maxCases: config.maxCases), keeping: Keeping(corpus: config.corpus, minimize: config.minimize), progress: progress)
    }

    func run(limits: Limits, keeping: Keeping, progress: ((FuzzProgress) -> Void)? = nil) throws -> FuzzSummary {
        self.limits = limits
        self.keeping = keeping
        let scheduler = LaneScheduler(session: Session(spec: spec, target: target, keepFrames: false)) { [unowned self] in !signatures.contains(.windowShrink) }
        started = target.clock.now
        lastProgress = started
        self.progress = progress
        defer { self.progress = nil }
        try scheduler.run(slots: config.lanes, self)
        summary.steps += scheduler.steps
        summary.seconds = target.clock.now - started
        summary.cellsCovered = planner.covered
        return summary
    }

    func finish(_ lane: Lane) throws {
        summary.cases += 1
        if let hook = onFinish {
            try hook(lane)
            return
        }
        try record(lane)
    }

    /// Restarts a target that failed, or ends the run with both failures when it cannot start again.
    func restartAfter(_ f: TargetFailure) throws {
        summary.restarts += 1
        do {
            try target.restart()
        } catch {
            throw TargetFailure(kind: .startFailed, detail: "the stack failed (\(f.kind.rawValue): \(f.detail)) and did not start again: \(error)", log: f.log)
        }
    }

    /// After the stack failed during a round: restart it, replay each connection of the round alone to find
    /// the one that makes it fail, and keep that case (minimized) as a finding. Returns the culprit, if found.
    func recover(from f: TargetFailure, _ failed: [Lane]) throws -> Lane? {
        try restartAfter(f)
        guard let first = failed.first, let sig = first.log.last.map(signature), !signatures.contains(sig) else { return nil }
        for lane in failed.prefix(Fuzzer.failureSuspects) {
            guard let r = try replay(lane.steps, isn: lane.testerISN), let last = r.log.last, last.diverged, signature(last) == sig else { continue }
            lane.connection.steps = r.steps
            lane.log = r.log
            try record(lane)
            return lane
        }
        // No connection makes it fail alone: keep the first as found, and say so in the case.
        first.log[first.log.count - 1].mismatches.append(.notReproducedAlone(others: failed.count - 1))
        try record(first, minimize: false)
        return nil
    }

    /// How many connections of a failed round are replayed alone to find the one that makes the stack fail.
    static let failureSuspects = 16

    /// Keeps a finished case's first divergence, if its signature is new: minimized, written to the corpus.
    func record(_ lane: Lane, minimize: Bool = true) throws {
        guard let bad = lane.log.firstIndex(where: \.diverged) else { return }
        let sig = signature(lane.log[bad])
        guard !signatures.contains(sig) else { return }
        signatures.insert(sig)
        var steps = Array(lane.steps.prefix(bad + 1))
        var log = Array(lane.log.prefix(bad + 1))
        var frames: [Frame] = []
        if keeping.minimize && minimize {
            let isn = lane.testerISN, shrink = sig == .windowShrink
            let m = Minimizer<([StepLog], [Frame])>(reproduces: { candidate in
                guard let r = try self.replay(candidate, isn: isn, windowShrink: shrink), let last = r.log.last, last.diverged,
                      self.signature(last) == sig else { return nil }
                return (r.steps, (r.log, r.frames))
            }, asFound: { candidate in
                let r = try self.replay(candidate, isn: isn, windowShrink: shrink)
                return (r?.steps ?? candidate, (r?.log ?? [], r?.frames ?? []))
            })
            let r = try m.minimize(steps)
            steps = r.steps
            (log, frames) = r.evidence
        } else if let r = try replay(steps, isn: lane.testerISN, windowShrink: sig == .windowShrink) {
            steps = r.steps
            log = r.log
            frames = r.frames
        }
        let last = log.last!
        let rules = last.rules.map { spec.rules[$0] }
        var d = Divergence(signature: sig, stateBefore: last.stateBefore, input: describeInput(last), expected: describeOutcome(last.expected, last.expectedState),
                           observed: describeOutcome(last.observed, last.observedState), rules: rules.map(\.id), citations: rules.map(\.citationText),
                           steps: steps.count, testerISN: lane.testerISN, casePath: nil, pcapPath: nil, log: log)
        if let dir = keeping.corpus {
            let w = CorpusWriter(directory: dir, spec: spec, settings: target.settings, targetName: config.targetName)
            (d.casePath, d.pcapPath) = try w.write(d, frames: frames, linkType: target.link.linkType, index: summary.divergences.count)
        }
        summary.divergences.append(d)
    }

    /// What identifies a divergence (`Signature`): the state, the rules that decided the input, and how
    /// expected and observed differ. One faulty rule is one divergence, whichever flags or numbers of its inputs
    /// first showed it.
    func signature(_ l: StepLog) -> Signature {
        let rules = l.rules.isEmpty ? describeInput(l) : l.rules.map { spec.rules[$0].id }.joined(separator: " › ")
        return Signature(state: l.stateBefore, decidedBy: rules, expected: l.expected, expectedState: l.expectedState, observed: l.observed,
                         observedState: l.observedState, mismatches: l.mismatches)
    }

    func describeInput(_ l: StepLog) -> String {
        switch l.step {
        case .segment(let s): "< " + SegmentKey(s).description
        case .call(let c): "\(c)"
        case .accept: "accept"
        }
    }

    func describeOutcome(_ segs: [Segment], _ state: TCPState?) -> String {
        let k = SegmentKey.normalize(segs)
        return (k.isEmpty ? "nothing" : k.map(\.description).joined(separator: ", ")) + " → \(state?.rawValue ?? "?")"
    }

    /// Runs a case alone on a fresh connection: the steps that could run, their log up to the first
    /// divergence, and the frames both ways.
    /// `windowShrink`: whether a shrinking window counts as a divergence (only when that is the finding replayed).
    /// `untilDivergence`: stop at the first step the model does not predict (off for differential runs).
    func replay(_ steps: [FuzzStep], isn: UInt32? = nil, windowShrink: Bool = true, untilDivergence: Bool = true) throws -> (steps: [FuzzStep], log: [StepLog], frames: [Frame])? {
        let session = Session(spec: spec, target: target, keepFrames: true)
        session.reportsWindowShrink = windowShrink
        let lane = Lane(id: -1, tuple: freshTuple(), spec: spec, testerISN: isn ?? testerISN(), offered: target.capabilities.calls, purpose: .replay)
        for step in steps {
            if case .call(let c) = step, !lane.connection.callAllowed(c) { continue }
            if case .accept = step, lane.connection.accepted || !lane.connection.passive || !lane.connection.socketOpen { continue }
            do {
                try session.round([(lane, step)])
            } catch let f as TargetFailure {
                // The log ends with the failure; the next replay needs the stack running again.
                try restartAfter(f)
                return (lane.steps, lane.log, session.frames)
            }
            if lane.diverged && untilDivergence { break }
        }
        do {
            _ = try target.call(.release, on: lane.tuple)
        } catch let f as TargetFailure {
            try restartAfter(f)
        }
        return (lane.steps, lane.log, session.frames)
    }
}

/// Fuzzing as a scheduler's driver: each slot runs case after case, each toward the least covered input class,
/// until the run's time or cases are used up.
extension Fuzzer: LaneDriver {
    var refill: LaneScheduler.Refill { .inPlace }
    var exhausted: Bool { done() }

    func newLane(_ id: Int) -> Lane? {
        guard !done() else { return nil }
        let l = lane(id, purpose: .fuzz(index: summary.cases))
        l.plan = planner.nextPlan()
        return l
    }

    func judged(_ lane: Lane, stateBefore: Int) {
        let l = lane.log.last!
        planner.record(state: stateBefore, event: l.event, cell: l.cell)
        planner.observe(lane.connection, diverged: lane.diverged)
        if witnesses != nil, !l.diverged, let ev = l.event, l.cell >= 0 {
            let key = planner.key(state: stateBefore, event: ev, cell: l.cell)
            if witnesses![key] == nil { witnesses![key] = lane.steps }
        }
    }

    func roundDone() {
        let now = target.clock.now
        guard let progress, now - lastProgress >= 0.25 else { return }
        lastProgress = now
        progress(FuzzProgress(cases: summary.cases, cellsCovered: planner.covered, cellsTotal: summary.cellsTotal, divergences: summary.divergences.count, seconds: now - started))
    }

    /// The stack failed as a program: keep the case that did it, restart, and go on with new cases everywhere.
    func failed(_ f: TargetFailure, round: [Lane], all: [Lane]) throws -> [Lane] {
        _ = try recover(from: f, round)
        summary.cases += round.count
        return all
    }
}
