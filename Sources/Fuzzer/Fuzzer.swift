import Core
import Foundation
import Generator
import Link
import Model
import Oracle
import Report
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
    /// What the tester offered on its SYNs in the case.
    public var testerOptions: TesterOptions = .mssOnly
    /// Set when the case's odd option lists are its cause: a replay without them showed nothing (`record`).
    public var oddityNote: String?
    public var casePath: String?
    public var pcapPath: String?
    public var log: [StepLog]
    /// How many of the confirming replays of the kept case showed it again (`Fuzzer.confirmations` of them).
    public var reproduced = 0
    public var replays = 0
    /// The case did not show the divergence in any confirming replay: a timing-dependent observation, kept apart
    /// (its case and the pcap of a replay that did not reproduce it), never a finding.
    public var timingDependent: Bool { replays > 0 && reproduced == 0 }
    /// Replayed at all: false for a case set aside to wait for its replays once the run's budget for them was
    /// spent (`Fuzzer.deferredBudget`): kept as found, neither a finding nor timing-dependent.
    public var examined = true
    /// Seconds from the run's start to the case that first showed it (before minimizing and replays): the time to
    /// find it (`tcpspec-bench faults`).
    public var foundAfter = 0.0
}

/// The option dimensions a run covered: the offers drawn, and what the targets' SYNs agreed to.
public struct OptionCoverage: Sendable {
    /// Connections per offer.
    public var offers: [TesterOptions: Int] = [:]
    /// Connections whose target SYN was seen, and of those, the ones that agreed each option the tester offered.
    public var synSeen = 0
    public var windowScale = 0
    public var timestamps = 0
    public var sack = 0
    /// The option rules' verdicts over the target's segments (`OptionAgreement.tally`).
    public var rules = OptionTally()
    /// Tester segments sent with each odd option list (`OptionOddity`), and connections whose timestamp clock wrapped.
    public var oddities: [OptionOddity: Int] = [:]
    public var wrappingClocks = 0

    mutating func count(_ a: OptionAgreement) {
        var offer = a.offer
        if offer.timestampStart != TesterOptions.defaultTimestampStart {
            wrappingClocks += 1
            offer.timestampStart = TesterOptions.defaultTimestampStart
        }
        offers[offer, default: 0] += 1
        rules.merge(a.tally)
        guard a.targetSYN != nil else { return }
        synSeen += 1
        if a.windowScaleAgreed { windowScale += 1 }
        if a.timestampsAgreed { timestamps += 1 }
        if a.sackAgreed { sack += 1 }
    }

    /// `options: 32 of 32 offers drawn; of 9,120 connections whose SYN the target sent, Window Scale agreed on …`.
    public var description: String {
        "options: \(offers.count) of \(TesterOptions.combinations.count) offers drawn (\(wrappingClocks) connections with a wrapping timestamp clock); of \(synSeen) connections whose SYN the target sent, "
            + "agreed: Window Scale \(windowScale), Timestamps \(timestamps), SACK both ways \(sack)"
            + (oddities.isEmpty ? "" : "; odd option lists sent: " + OptionOddity.drawn.map { "\($0) \(oddities[$0, default: 0])" }.joined(separator: ", "))
    }
}

extension OptionTally {
    /// The report's records, one per rule that judged a segment.
    public var records: [OptionRuleRecord]? {
        let r = rules.map { OptionRuleRecord(rule: $0.rawValue, requirement: $0.requirement?.description, clause: $0.clause,
                                             judged: judged[$0, default: 0], broken: broken[$0, default: 0]) }
        return r.isEmpty ? nil : r
    }
}

public struct FuzzSummary: Sendable {
    public var cases = 0
    /// What the tester offered and the targets agreed.
    public var options = OptionCoverage()
    public var steps = 0
    public var seconds = 0.0
    public var cellsCovered = 0
    /// The classes coverage counts over: the reachable ones, less those proven unreachable (`cellsProven`).
    public var cellsTotal = 0
    /// Classes the solver proved unreachable, left out of `cellsTotal` (`Configuration.proveUniverse`).
    public var cellsProven = 0
    /// The (state, event, rule chain) triples of the universe, and those an input ran: the distinct ways the spec
    /// answers (counted only: the planner still takes the least covered class, `Planner.score`).
    public var chainsCovered = 0
    public var chainsTotal = 0
    /// Proven-unreachable classes a connection reached anyway: a wrong proof, to be 0.
    public var cellsReachedThoughProven = 0
    public var divergences: [Divergence] = []
    /// The divergences that reproduce: the findings.
    public var findings: [Divergence] { divergences.filter { !$0.timingDependent && $0.examined } }
    public var timingDependent: [Divergence] { divergences.filter(\.timingDependent) }
    /// Set aside (their cases wait on a real clock) and never replayed: the budget for replaying them was spent.
    public var unexamined: [Divergence] { divergences.filter { !$0.examined } }
    /// The most lanes waiting or back from a wait, out of their slots, at once (`LaneScheduler`).
    public var peakLanesOutOfSlots = 0
    /// Wall seconds allowed for replaying the cases set aside (`Fuzzer.deferredBudget`).
    public var replayBudget = 0.0
    /// Times the target was started again after failing as a program.
    public var restarts = 0
    /// Wait steps judged (timers let expire).
    public var waits = 0
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
        /// Lanes allowed to wait out of their slots, per slot (nil: 2 on a real clock, where a round's frames
        /// must fit the veth backlog; unbounded on a virtual one, whose time moves only when every lane waits).
        public var lanesOutOfSlotsPerSlot: Int?
        public var corpus: String?
        public var minimize = true
        public var targetName = "linux"
        /// The choices RFC 9293 leaves open under the profile, with their other alternatives compiled
        /// (`ChoiceSet.load`); none by default.
        public var choices: ChoiceSet = .none
        /// The longest wait a case may make on a real clock (nil: 5 s); a virtual clock waits any length for free.
        public var maxWait: Double?
        /// Conform: say why a test's class had no segment on its way (`ClassSolver.blocking`: the values of the
        /// TCB that rule it out). Off by default: measured against Linux (linux profile), it took conform from
        /// 161 s to 378 s, explaining 113 of the 418 such tests by one value (PASSIVE 68, SUBSTATE 29, RCV.WND 16;
        /// measured before explanations were checked against the model); the rest need several at once.
        public var explainMisses = false
        /// What the tester offers on each connection's SYNs; nil: drawn per connection from
        /// `TesterOptions.combinations` (seeded, as the ISN is).
        public var testerOptions: TesterOptions?
        /// Odd option lists on the tester's segments (`OptionOddity`, one segment in eight) and a timestamp clock
        /// that wraps (`TesterOptions.wrappingTimestampStart`, one Timestamps offer in four), drawn from a stream
        /// of their own so that the rest of a seeded run draws what it drew without them. Conformance runs go
        /// without (a test is its input class, plain).
        public var oddities = true
        /// Leave the classes the solver proves unreachable out of the universe (`Planner.proveUniverse`): what
        /// `tcpspec fuzz` reports coverage over. Off where a few seconds of proofs would outweigh the run.
        public var proveUniverse = false
        public init() {}
    }

    /// Waits longer than this (Linux's 60 s TIME-WAIT) run only when asked (`--max-wait`).
    public static let defaultMaxWait = 5.0

    let spec: CompiledSpec
    let target: Target
    let config: Configuration
    /// What the run in progress stops at and keeps: the configuration's, or a conformance warm-up's.
    var limits: Limits
    var keeping: Keeping
    let planner: Planner
    var sampler: InputSampler
    /// The stream the oddities are drawn from (`Configuration.oddities`), seeded from the run's seed.
    var odditySampler: SplitMix64
    /// Off while a conformance suite runs (its warm-up included).
    var drawsOddities: Bool
    var nextTuple = 0
    var signatures = KnownSignatures()
    /// When set, the first step sequence that exercised each input class (by the planner's key): conformance runs
    /// replay them to reach classes their own search does not set up.
    var witnesses: [Int: [FuzzStep]]?
    public internal(set) var summary = FuzzSummary()
    /// The stack's choices as observed in this run, shared by every session of it (replays included).
    let choices: ChoiceRun
    /// When set, finished cases go here instead of being judged for the corpus (differential mode).
    var onFinish: ((Lane) throws -> Void)?
    /// The run in progress: when it started, when progress was last reported, whom to report it to.
    var started = 0.0
    /// The run's budget and its reports are the user's time, whatever clock the stack's timers run on (the
    /// reference stack's is virtual).
    let runClock = MonotonicClock()
    /// What one session captured for another's connections (a replay in the middle of the run).
    let stash = FrameStash()
    /// Findings whose cases wait on a real clock, kept once the lanes are done (see `record`).
    var deferred: [(lane: Lane, minimize: Bool, seen: Double)] = []
    /// Rounds searched again for the case that makes the stack fail, by failure signature (`recover`).
    var failureSearches: [Signature: Int] = [:]
    var recordingDeferred = false
    var lastProgress = 0.0
    var progress: ((FuzzProgress) -> Void)?

    public init(spec: CompiledSpec, target: Target, configuration: Configuration) {
        // A stack set away from its defaults is judged by its profile with what was set (its settings say so).
        self.spec = target.judgingSpec(spec)
        self.target = target
        config = configuration
        limits = Limits(duration: configuration.duration, maxCases: configuration.maxCases)
        keeping = Keeping(corpus: configuration.corpus, minimize: configuration.minimize)
        planner = Planner(spec: self.spec, seed: configuration.seed, offered: target.capabilities.calls, proveUniverse: configuration.proveUniverse)
        planner.timerMargin = target.timerMargin
        planner.maxWait = target.timersNotJudged != nil ? 0 : configuration.maxWait ?? (target.clock is VirtualClock ? .infinity : Fuzzer.defaultMaxWait)
        sampler = InputSampler(seed: configuration.seed)
        odditySampler = SplitMix64(seed: configuration.seed ^ 0x6F64_6469_7469_6573)
        drawsOddities = configuration.oddities
        summary.cellsTotal = planner.universe.count
        summary.cellsProven = planner.provenUnreachable
        if let dir = configuration.corpus { signatures = KnownSignatures(corpus: dir) }
        choices = ChoiceRun(configuration.choices)
    }

    /// What the stack chose where the RFC lets it, as this run observed it.
    public var choiceRecords: [ChoiceBook.Record] { choices.book.records }

    func session(keepFrames: Bool) -> Session {
        let s = Session(spec: spec, target: target, keepFrames: keepFrames, stash: stash)
        s.choices = choices
        return s
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

    /// The tester's options for a new connection: the configuration's, else one of the combinations, drawn.
    func testerOptions() -> TesterOptions {
        if let o = config.testerOptions { return o }
        var o = TesterOptions.combinations[Int(sampler.rng.next() % UInt64(TesterOptions.combinations.count))]
        if drawsOddities, o.timestamps, odditySampler.next() % 4 == 0 { o.timestampStart = TesterOptions.wrappingTimestampStart }
        return o
    }

    func lane(_ id: Int, purpose: Lane.Purpose) -> Lane {
        let lane = Lane(id: id, tuple: freshTuple(), spec: spec, testerISN: testerISN(), offered: target.capabilities.calls, purpose: purpose,
                        options: testerOptions(), ipv6: target.targetIP.isV6)
        lane.model.recordsInputClass = true
        return lane
    }

    /// The next step of a lane's plan, or nil when the case is over; in a fuzz case, one segment in eight with an
    /// odd option list (`OptionOddity`, one that applies: SYN-only options only without SYN, unaligned ones only
    /// where there are options).
    func nextStep(_ lane: Lane) -> FuzzStep? {
        let step = plannedStep(lane)
        guard drawsOddities, case .fuzz = lane.purpose, case .segment(var s)? = step, s.oddity == .none, odditySampler.next() % 8 == 0 else { return step }
        let fitting = OptionOddity.drawn.filter { lane.agreement.applies($0, syn: s.ctl.contains(.syn)) }
        s.oddity = fitting[Int(odditySampler.next() % UInt64(fitting.count))]
        summary.options.oddities[s.oddity, default: 0] += 1
        return .segment(s)
    }

    /// The next step of a lane's plan as the planner makes it.
    func plannedStep(_ lane: Lane) -> FuzzStep? {
        // After a divergence the model no longer knows the target's state: the case ends there.
        if lane.diverged { return nil }
        // An orphan the stack may have given up: what it answers next is no connection's (Lane.mayHaveBeenGivenUp).
        if lane.wait == nil, lane.mayHaveBeenGivenUp(by: target) {
            if case .conform(let test, .none, .none) = lane.purpose {
                lane.purpose = .conform(test: test, carriedAt: nil, missed: "the stack may have given the orphan up before the input (its retransmissions spent: tcp_orphan_retries \(target.orphanRetries ?? 0))")
            }
            return nil
        }
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
                let conforming: Bool = if case .conform = lane.purpose { true } else { false }
                if let s = planner.input(for: lane.connection, state: st, event: ev, cell: c, sampler: &sampler, solve: conforming) {
                    // An input that restarts a timer whose expiry sends nothing (a FIN again in TIME-WAIT): a fuzz
                    // case lets the timer age first, so that a wait after the input can tell a restart from none.
                    if case .fuzz = lane.purpose, let input = lane.modelInput(s), let t = planner.silentRestart(by: input, on: lane.model),
                       let (age, span) = lane.timerAge(t, now: target.frameNow) {
                        if let d = planner.restartSetupWait(for: t, on: lane.model, age: age, span: span) {
                            lane.plan.insert(item, at: 0)  // drawn again after the wait
                            return .wait(Fuzzer.milliseconds(d))
                        }
                        lane.plan.insert(.restartCheck(t), at: 0)
                    }
                    lane.carryInput()
                    return s
                }
                let missed: String
                if lane.model.state != st {
                    missed = "the path to \(spec.states[st].name) ended in \(spec.states[lane.model.state].name)"
                } else if ev.isTimeout, case .conform = lane.purpose, let t = TimerName(expiring: ev),
                          let (d, w) = planner.earlyCheckWait(for: t, on: lane.connection, cell: c) {
                    // Its expiry is beyond the longest wait: the wait allowed still shows a stack that expires it early.
                    lane.carryInput()
                    lane.earlyCheck = "only checked early: the \(t.spelling) timer did not expire within the \(Durations.text(d)) waited (--max-wait \(Durations.text(planner.maxWait))), and its window (\(w.text) after its start, \(w.timings.map(\.rawValue).joined(separator: ", "))) lies beyond it"
                    return .wait(d)
                } else if ev.isTimeout {
                    let (why, setup) = planner.timerSetup(for: lane.connection, event: ev, cell: c)
                    if let setup {
                        // Put something in flight for the timer to time, then wait for it.
                        lane.plan.insert(item, at: 0)
                        return setup
                    }
                    missed = why
                } else if ev != .segment {
                    missed = "the sockets API has no \(ev.spelling) call here (the tester holds no socket in this state, or the call is refused before the stack sees it)"
                } else if case .conform = lane.purpose, !lane.heldTextSetUp,
                          let setup = planner.heldTextSetup(for: lane.connection, state: st, cell: c, sampler: &sampler) {
                    // Text held first, then the class (once per lane: a class still not drawn is missed).
                    lane.heldTextSetUp = true
                    lane.plan.insert(item, at: 0)
                    return setup
                } else if conforming, config.explainMisses, let b = planner.blocking(for: lane.model, cell: c) {
                    // Satisfiable for some TCB (not proven), not for this one: say which of its values stand in the way.
                    missed = "no segment of this class for the TCB this way made: \(b)"
                } else {
                    missed = "no segment of this class found: its classifiers' conditions were not met by the inputs drawn in the states the model reached"
                }
                if case .conform(let test, let at, _) = lane.purpose { lane.purpose = .conform(test: test, carriedAt: at, missed: missed) }
            case .restartCheck(let t):
                if let (age, span) = lane.timerAge(t, now: target.frameNow),
                   let d = planner.restartCheckWait(for: t, on: lane.model, age: age, span: span) {
                    return .wait(Fuzzer.milliseconds(d))
                }
            case .random:
                return planner.randomStep(for: lane.connection, sampler: &sampler)
            case .stay:
                for _ in 0..<20 {
                    let s = planner.randomStep(for: lane.connection, sampler: &sampler)
                    var m = lane.model
                    if let input = lane.modelInput(s) { _ = m.apply(input) }
                    if m.state == lane.model.state { return s }
                }
            }
        }
        return heldAckWait(lane)
    }

    /// A wait as case files write it (whole milliseconds).
    static func milliseconds(_ d: Double) -> Double { max(0.001, (d * 1000).rounded() / 1000) }

    /// A case whose stack still holds an acknowledgment back waits out its bound before it ends: the ACK is judged.
    func heldAckWait(_ lane: Lane) -> FuzzStep? {
        guard let h = lane.heldAcks.first, lane.wait == nil, let bound = lane.model.spec.timings[.delayedAck]?.upper else { return nil }
        let left = h.since + bound + target.timerMargin.late(after: bound) - target.frameNow
        return .wait(max(0.001, (left * 1000).rounded(.up) / 1000 + 0.001))
    }

    /// Whether the run has done what it was asked (its cases, or its time).
    func done() -> Bool {
        if let m = limits.maxCases, summary.cases >= m { return true }
        return runClock.now - started >= limits.duration
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
        let scheduler = LaneScheduler(session: session(keepFrames: false)) { [unowned self] in !signatures.contains(.windowShrink) }
        scheduler.outOfSlotsPerSlot = config.lanesOutOfSlotsPerSlot ?? (target.clock is VirtualClock ? nil : LaneScheduler.realClockOutOfSlotsPerSlot)
        started = runClock.now
        lastProgress = started
        self.progress = progress
        defer { self.progress = nil }
        try scheduler.run(slots: config.lanes, self)
        summary.steps += scheduler.steps
        summary.peakLanesOutOfSlots = max(summary.peakLanesOutOfSlots, scheduler.peakOutOfSlots)
        summary.seconds = runClock.now - started
        summary.replayBudget = Fuzzer.deferredBudget(duration: limits.duration)
        try recordDeferred(budget: summary.replayBudget)
        summary.cellsCovered = planner.covered
        summary.cellsReachedThoughProven = planner.reachedProven
        (summary.chainsCovered, summary.chainsTotal) = (planner.chainsCovered, planner.chainsInUniverse)
        return summary
    }

    func finish(_ lane: Lane) throws {
        summary.cases += 1
        summary.options.count(lane.agreement)
        if let hook = onFinish {
            try hook(lane)
            return
        }
        try record(lane)
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
        if case .wait = l.step { summary.waits += 1 }
        planner.record(state: stateBefore, event: l.event, cell: l.cell)
        planner.observe(lane.connection, diverged: lane.diverged)
        if witnesses != nil, !l.diverged, let ev = l.event, l.cell >= 0 {
            let key = planner.key(state: stateBefore, event: ev, cell: l.cell)
            if witnesses![key] == nil { witnesses![key] = lane.steps }
        }
    }

    func roundDone() {
        let now = runClock.now
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
