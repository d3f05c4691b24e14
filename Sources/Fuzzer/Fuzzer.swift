import Foundation
import Generator
import Link
import Model
import Spec
import Wire
import Targets

/// A divergence found, minimized and written to the corpus.
public struct Divergence: Sendable {
    public var signature: String
    public var stateBefore: String
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
        /// Port ranges for connections: (target port, tester port) pairs never reused within a run.
        public init() {}
    }

    let spec: CompiledSpec
    let target: Target
    var config: Configuration
    let planner: Planner
    var sampler: InputSampler
    var nextTuple = 0
    var signatures: Set<String> = []
    /// When set, the first step sequence that exercised each input class (by the planner's key): conformance runs
    /// replay them to reach classes their own search does not set up.
    var witnesses: [Int: [FuzzStep]]?
    public internal(set) var summary = FuzzSummary()
    /// Connections whose case is over, released with the next round.
    var releases: [Tuple] = []
    /// When set, finished cases go here instead of being judged for the corpus (differential mode).
    var onFinish: ((Lane) throws -> Void)?

    public init(spec: CompiledSpec, target: Target, configuration: Configuration) {
        self.spec = spec
        self.target = target
        config = configuration
        planner = Planner(spec: spec, seed: configuration.seed, offered: target.capabilities.calls)
        sampler = InputSampler(seed: configuration.seed)
        summary.cellsTotal = planner.universe.count
        if let dir = configuration.corpus { signatures = CorpusWriter.existingSignatures(dir) }
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

    func newLane(_ id: Int) -> Lane {
        let lane = Lane(id: id, tuple: freshTuple(), spec: spec, testerISN: testerISN(), offered: target.capabilities.calls)
        lane.model.recordsInputClass = true
        lane.plan = planner.nextPlan()
        lane.caseIndex = summary.cases
        return lane
    }

    /// The next step of a lane's plan, or nil when the case is over.
    func nextStep(_ lane: Lane) -> FuzzStep? {
        // After a divergence the model no longer knows the target's state: the case ends there.
        if lane.diverged { return nil }
        // A passive connection is taken from the listener as soon as it is synchronized (once).
        if lane.passive, !lane.acceptTried, lane.socketOpen, spec.states[lane.model.state].synchronized {
            lane.acceptTried = true
            return .accept
        }
        while let item = lane.plan.first {
            lane.plan.removeFirst()
            switch item {
            case .step(let s):
                if case .call(let c) = s, !lane.callAllowed(c, spec: spec) { continue }
                return s
            case .cell(let st, let ev, let c):
                if let s = planner.input(for: lane, state: st, event: ev, cell: c, sampler: &sampler) {
                    lane.cellStep = lane.steps.count
                    return s
                }
                if lane.model.state != st {
                    lane.cellMissed = "the path to \(spec.states[st].name) ended in \(spec.states[lane.model.state].name)"
                } else if ev != .segment {
                    lane.cellMissed = "the sockets API has no \(ev.spelling) call here (the tester holds no socket in this state, or the call is refused before the stack sees it)"
                } else {
                    lane.cellMissed = "no segment of this class found: its classifiers' conditions were not met by the inputs drawn in the states the model reached"
                }
            case .random:
                return planner.randomStep(for: lane, sampler: &sampler)
            case .stay:
                for _ in 0..<20 {
                    let s = planner.randomStep(for: lane, sampler: &sampler)
                    var m = lane.model
                    if let input = lane.modelInput(s) { _ = m.apply(input) }
                    if m.state == lane.model.state { return s }
                }
            }
        }
        return nil
    }

    public func run(progress: ((FuzzProgress) -> Void)? = nil) throws -> FuzzSummary {
        let session = Session(spec: spec, target: target, keepFrames: false)
        let start = target.clock.now
        var lanes = (0..<config.lanes).map(newLane)
        var lastProgress = start
        func done() -> Bool {
            if let m = config.maxCases, summary.cases >= m { return true }
            return target.clock.now - start >= config.duration
        }
        while !lanes.isEmpty {
            var work: [(Lane, FuzzStep)] = []
            for (i, lane) in lanes.enumerated() {
                if let step = nextStep(lane) {
                    work.append((lane, step))
                } else {
                    try finish(lane)
                    lanes[i] = done() ? lane : newLane(lane.id)
                    if !done(), let step = nextStep(lanes[i]) { work.append((lanes[i], step)) }
                }
            }
            if done() { lanes.removeAll { l in !work.contains { $0.0 === l } } }
            if work.isEmpty { break }
            let before = work.map { $0.0.model.state }
            session.reportsWindowShrink = !signatures.contains(Fuzzer.windowShrinkSignature)
            do {
                try session.round(work, releasing: releases)
                releases.removeAll()
            } catch let f as TargetFailure {
                // The stack failed as a program: keep the case that did it, restart, and go on with new cases.
                releases.removeAll()
                _ = try recover(from: f, work.map(\.0))
                summary.cases += work.count
                lanes = done() ? [] : lanes.map { newLane($0.id) }
                continue
            }
            summary.steps += work.count
            for (k, (lane, _)) in work.enumerated() {
                planner.record(lane.log.last!, stateBefore: before[k])
                planner.observe(lane)
                if witnesses != nil, let l = lane.log.last, !l.diverged, let ev = l.event, l.cell >= 0 {
                    let key = planner.key(state: before[k], event: ev, cell: l.cell)
                    if witnesses![key] == nil { witnesses![key] = lane.steps }
                }
                // After a divergence the model no longer knows the target's state: the case ends there.
                if lane.diverged { lane.plan.removeAll() }
            }
            let now = target.clock.now
            if let progress, now - lastProgress >= 0.25 {
                lastProgress = now
                progress(FuzzProgress(cases: summary.cases, cellsCovered: planner.covered, cellsTotal: summary.cellsTotal, divergences: summary.divergences.count, seconds: now - start))
            }
        }
        try releaseFinished()
        summary.seconds = target.clock.now - start
        summary.cellsCovered = planner.covered
        return summary
    }

    /// Releases what finished cases left, when no round follows to carry it.
    func releaseFinished() throws {
        guard !releases.isEmpty else { return }
        defer { releases.removeAll() }
        do {
            _ = try target.exchange(calls: releases.map { (.release, $0) }, inject: [], states: [])
        } catch let f as TargetFailure {
            // Failed between cases: nothing to blame a case for; start it again.
            try restartAfter(f)
        }
    }

    func finish(_ lane: Lane) throws {
        summary.cases += 1
        // The case is over: its sockets go with the next round's calls (no exchange of their own), so that no
        // listener answers for a later case on the same port.
        releases.append(lane.tuple)
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
            lane.steps = r.steps
            lane.log = r.log
            try record(lane)
            return lane
        }
        // No connection makes it fail alone: keep the first as found, and say so in the case.
        first.log[first.log.count - 1].reasons.append("not reproduced alone: the failure needed the other \(failed.count - 1) connections of its round")
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
        if config.minimize && minimize {
            let isn = lane.testerISN, shrink = sig == Fuzzer.windowShrinkSignature
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
        } else if let r = try replay(steps, isn: lane.testerISN, windowShrink: sig == Fuzzer.windowShrinkSignature) {
            steps = r.steps
            log = r.log
            frames = r.frames
        }
        let last = log.last!
        let rules = last.rules.map { spec.rules[$0] }
        var d = Divergence(signature: sig, stateBefore: last.stateBefore, input: describeInput(last), expected: describeOutcome(last.expected, last.expectedState),
                           observed: describeOutcome(last.observed, last.observedState), rules: rules.map(\.id), citations: rules.map(\.citationText),
                           steps: steps.count, testerISN: lane.testerISN, casePath: nil, pcapPath: nil, log: log)
        if let dir = config.corpus {
            let w = CorpusWriter(directory: dir, spec: spec, settings: target.settings, targetName: config.targetName)
            (d.casePath, d.pcapPath) = try w.write(d, frames: frames, linkType: target.link.linkType, index: summary.divergences.count)
        }
        summary.divergences.append(d)
    }

    /// What identifies a divergence: the state, the rules that decided the input (the spec's own partition of
    /// input classes), and how expected and observed differ. One faulty rule is one divergence, whichever
    /// flags or numbers of its inputs first showed it.
    static let windowShrinkSignature = "any state | window | the target moved the right edge of its receive window left (RFC 9293 §3.8.6.2.2 SHLD-14)"

    func signature(_ l: StepLog) -> String {
        // The stack failed as a program: one finding per kind and what tcpspec was waiting for (numbers out).
        if let r = l.reasons.first, r.hasPrefix("target-") {
            let digitsOut = r.split(separator: "\n")[0].replacing(/[0-9]+/, with: "N")
            // Not the step: in a failed round every connection's step carries the failure; the detail names
            // the request the stack failed on.
            return "any state | \(digitsOut.prefix(240))"
        }
        let rules = l.rules.isEmpty ? describeInput(l) : l.rules.map { spec.rules[$0].id }.joined(separator: " › ")
        func shape(_ segs: [Segment]) -> String {
            let k = SegmentKey.normalize(segs)
            return k.isEmpty ? "none" : k.map { Notation.flags($0.ctl) + ($0.length > 0 ? "+data" : "") }.joined(separator: ",")
        }
        var how = ""
        let e = SegmentKey.normalize(l.expected), o = SegmentKey.normalize(l.observed)
        if e.count == o.count, zip(e, o).allSatisfy({ $0.ctl == $1.ctl }) {
            let fields = zip(e, o).flatMap { a, b in [a.seq != b.seq ? "seq" : nil, a.ack != b.ack ? "ack" : nil, a.length != b.length ? "length" : nil].compactMap { $0 } }
            if !fields.isEmpty { how = " (\(Set(fields).sorted().joined(separator: ",")) differ)" }
        }
        if !l.reasons.isEmpty, l.reasons.allSatisfy({ $0.hasPrefix("window:") }) { return Fuzzer.windowShrinkSignature }
        return "\(l.stateBefore) | \(rules) | expected \(shape(l.expected)) → \(l.expectedState) | observed \(shape(l.observed))\(how) → \(l.observedState ?? "?")"
    }

    func describeInput(_ l: StepLog) -> String {
        switch l.step {
        case .segment(let s): "< " + SegmentKey(s).description
        case .call(let c): "\(c)"
        case .accept: "accept"
        }
    }

    func describeOutcome(_ segs: [Segment], _ state: String?) -> String {
        let k = SegmentKey.normalize(segs)
        return (k.isEmpty ? "nothing" : k.map(\.description).joined(separator: ", ")) + " → \(state ?? "?")"
    }

    /// Runs a case alone on a fresh connection: the steps that could run, their log up to the first
    /// divergence, and the frames both ways.
    /// `windowShrink`: whether a shrinking window counts as a divergence (only when that is the finding replayed).
    /// `untilDivergence`: stop at the first step the model does not predict (off for differential runs).
    func replay(_ steps: [FuzzStep], isn: UInt32? = nil, windowShrink: Bool = true, untilDivergence: Bool = true) throws -> (steps: [FuzzStep], log: [StepLog], frames: [Frame])? {
        let session = Session(spec: spec, target: target, keepFrames: true)
        session.reportsWindowShrink = windowShrink
        let lane = Lane(id: -1, tuple: freshTuple(), spec: spec, testerISN: isn ?? testerISN(), offered: target.capabilities.calls)
        for step in steps {
            if case .call(let c) = step, !lane.callAllowed(c, spec: spec) { continue }
            if case .accept = step, lane.accepted || !lane.passive || !lane.socketOpen { continue }
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
