import Core
import Generator
import Link
import Targets

/// What a run (fuzzing, the conformance suite) tells the lane scheduler: which lane a slot runs next, each lane's
/// next step, and what to do when a lane's case ends or the stack fails. The scheduler does the rest, the same
/// way for every run: rounds of one step per lane, judged by the session.
protocol LaneDriver: AnyObject {
    /// A new lane for slot `id`; nil when the run has no more work for it.
    func newLane(_ id: Int) -> Lane?
    /// The lane's next step; nil when its case is over.
    func nextStep(_ lane: Lane) -> FuzzStep?
    /// The lane's case is over.
    func finish(_ lane: Lane) throws
    /// A step of the lane was judged (`stateBefore`: the model's state before it).
    func judged(_ lane: Lane, stateBefore: Int)
    /// The stack failed as a program during a round and has been dealt with; the lanes to start afresh (the
    /// others of `round` and `all` go on).
    func failed(_ f: TargetFailure, round: [Lane], all: [Lane]) throws -> [Lane]
    /// After each round that ran.
    func roundDone()
    /// No new lane will be asked for: lanes with no step left are dropped at once.
    var exhausted: Bool { get }
    /// How a slot whose case ended is refilled: at once, before the next slot is asked for its step (fuzzing),
    /// or after every slot has been asked, last slot first (the conformance suite). Each order is what the same
    /// seed has always produced for its run.
    var refill: LaneScheduler.Refill { get }
}

/// Runs lanes in rounds against a target: each round asks every lane for its next step, refills the slots of
/// finished cases, then runs the round's calls, segments and barrier in one exchange (`Session.round`).
final class LaneScheduler {
    enum Refill {
        case inPlace
        case afterCollecting
    }

    let session: Session
    let reportsWindowShrink: () -> Bool
    /// Connections of finished cases, let go with the next round's calls (no exchange of their own), so that no
    /// listener answers for a later case on the same port.
    var releases: [Tuple] = []
    /// Steps run.
    private(set) var steps = 0
    /// The most lanes out of their slots at once (see `run`).
    private(set) var peakOutOfSlots = 0
    /// Lanes out of their slots allowed per slot (see `run`); nil: no bound.
    var outOfSlotsPerSlot: Int?
    /// The bound on a real stack's clock.
    static let realClockOutOfSlotsPerSlot = 2

    init(session: Session, reportsWindowShrink: @escaping () -> Bool) {
        self.session = session
        self.reportsWindowShrink = reportsWindowShrink
    }

    /// What a lane does next, as the scheduler sees it.
    enum Next {
        case step(FuzzStep)
        /// It began a wait: out of the rounds until due, its slot free meanwhile.
        case parked
        case finished
    }

    func next(_ lane: Lane, _ driver: LaneDriver) -> Next {
        guard let step = driver.nextStep(lane) else { return .finished }
        if case .wait(let d) = step {
            session.park(lane, step, seconds: d)
            return .parked
        }
        return .step(step)
    }

    /// A lane that waits (a `wait` step) leaves its slot to a new lane and comes back when due, in a round of its
    /// own or beside others, to be judged; then it runs on outside the slots (`extras`) until its case ends.
    /// When nothing else runs the scheduler sleeps on the target's clock until the first wait is due (a virtual
    /// clock just moves).
    ///
    /// Lanes out of their slots (waiting, or back from a wait) are at most `outOfSlotsPerSlot` × `slots` (on a real
    /// clock; a virtual one moves only when every lane waits, so a bound would hold its waits back): past it a
    /// slot whose lane begins a wait stays empty until some come back. Unbounded, a run whose cases wait often
    /// (timer classes against a real stack) held thousands of connections at once, and rounds of a thousand lanes
    /// slowed every round until the run stalled (measured: 4,779 parked, 1,299 extras, no end in 300 s).
    func run(slots: Int, _ driver: LaneDriver) throws {
        var lanes = (0..<slots).compactMap(driver.newLane)
        var extras: [Lane] = []
        var parked: [Lane] = []
        let outOfSlotsLimit = outOfSlotsPerSlot.map { slots * $0 } ?? Int.max
        /// Slots left empty at the limit, by id: refilled when lanes come back.
        var emptySlots: [Int] = []
        while true {
            if driver.refill == .inPlace {
                while !emptySlots.isEmpty, parked.count + extras.count < outOfSlotsLimit, !driver.exhausted,
                      let l = driver.newLane(emptySlots[emptySlots.count - 1]) {
                    emptySlots.removeLast()
                    lanes.append(l)
                }
            }
            if lanes.isEmpty, extras.isEmpty, parked.isEmpty { break }
            var work: [(Lane, FuzzStep)] = []
            let now = session.target.clock.now
            let due = parked.filter { $0.wait!.due <= now }
            if !due.isEmpty {
                let dueIDs = Set(due.map(ObjectIdentifier.init))
                parked.removeAll { dueIDs.contains(ObjectIdentifier($0)) }
            }
            var finishedExtras: [Lane] = []
            var stepping = Set<ObjectIdentifier>()
            for lane in extras {
                switch next(lane, driver) {
                case .step(let s):
                    work.append((lane, s))
                    stepping.insert(ObjectIdentifier(lane))
                case .parked: parked.append(lane)
                case .finished: finishedExtras.append(lane)
                }
            }
            extras.removeAll { !stepping.contains(ObjectIdentifier($0)) }
            for lane in finishedExtras {
                try end(lane, driver)
                // A slot given up meanwhile (no work then) takes the work this case's end made (a retry).
                if lanes.count < slots, let l = driver.newLane(lane.id) { lanes.append(l) }
            }
            for lane in due {
                work.append((lane, lane.wait!.step))
                extras.append(lane)
            }
            switch driver.refill {
            case .inPlace:
                var emptied: [Int] = []
                for (i, lane) in lanes.enumerated() {
                    var current = lane
                    switch next(lane, driver) {
                    case .step(let s):
                        work.append((lane, s))
                        continue
                    case .parked: parked.append(lane)
                    case .finished: try end(lane, driver)
                    }
                    // Whether lanes[i] is a lane still to be asked (not waiting, not ended).
                    var held = false
                    while parked.count + extras.count < outOfSlotsLimit, let l = driver.newLane(current.id) {
                        lanes[i] = l
                        current = l
                        switch next(l, driver) {
                        case .step(let s):
                            work.append((l, s))
                            held = true
                        case .parked:
                            parked.append(l)
                            continue
                        case .finished: held = true
                        }
                        break
                    }
                    if !held, !driver.exhausted { emptied.append(i) }
                }
                for i in emptied.reversed() {
                    emptySlots.append(lanes[i].id)
                    lanes.remove(at: i)
                }
                if driver.exhausted {
                    let stepping = Set(work.map { ObjectIdentifier($0.0) })
                    lanes.removeAll { !stepping.contains(ObjectIdentifier($0)) }
                }
                if work.isEmpty, parked.isEmpty, extras.isEmpty { return try releaseFinished(driver) }
            case .afterCollecting:
                var vacated: [(index: Int, finished: Bool)] = []
                for (i, lane) in lanes.enumerated() {
                    switch next(lane, driver) {
                    case .step(let s): work.append((lane, s))
                    case .parked:
                        parked.append(lane)
                        vacated.append((i, false))
                    case .finished: vacated.append((i, true))
                    }
                }
                for (i, finished) in vacated.reversed() {
                    if finished { try end(lanes[i], driver) }
                    if let l = driver.newLane(lanes[i].id) {
                        lanes[i] = l
                        switch next(l, driver) {
                        case .step(let s): work.append((l, s))
                        case .parked: parked.append(l)
                        case .finished: break  // asked again next round
                        }
                    } else {
                        lanes.remove(at: i)
                    }
                }
            }
            if work.isEmpty, driver.exhausted, extras.isEmpty, !(session.target.clock is VirtualClock) {
                // The run's budget is spent and only waits are left: on a real clock they would stretch the run
                // past it, so their cases are dropped unjudged (and uncounted).
                for l in parked {
                    session.unpark(l)
                    releases.append(l.tuple)
                }
                parked.removeAll()
                continue
            }
            if work.isEmpty {
                // Everyone waits: sleep until the first wait is due.
                if let first = parked.map({ $0.wait!.due }).min() {
                    let left = first - session.target.clock.now
                    if left > 0 { session.target.clock.sleep(left) }
                }
                continue
            }
            peakOutOfSlots = max(peakOutOfSlots, parked.count + extras.count)
            let before = work.map { $0.0.model.state }
            session.reportsWindowShrink = reportsWindowShrink()
            do {
                try session.round(work, releasing: releases)
                releases.removeAll()
            } catch let f as TargetFailure {
                releases.removeAll()
                // Waiting lanes lost their connections with the stack: they fail with the round.
                let waiting = parked
                parked.removeAll()
                for l in waiting { session.unpark(l) }
                let failedLanes = work.map(\.0) + waiting
                let again = try driver.failed(f, round: failedLanes, all: lanes + extras + waiting)
                for lane in again {
                    if let e = extras.firstIndex(where: { $0 === lane }) {
                        extras.remove(at: e)
                        continue
                    }
                    guard let i = lanes.firstIndex(where: { $0 === lane }) else { continue }
                    if let l = driver.newLane(lane.id) { lanes[i] = l } else { lanes.remove(at: i) }
                }
                extras.removeAll { l in failedLanes.contains { $0 === l } }
                continue
            }
            steps += work.count
            for (k, (lane, _)) in work.enumerated() {
                driver.judged(lane, stateBefore: before[k])
                // After a divergence the model no longer knows the target's state: the case ends there.
                if lane.diverged { lane.plan.removeAll() }
            }
            driver.roundDone()
        }
        try releaseFinished(driver)
    }

    func end(_ lane: Lane, _ driver: LaneDriver) throws {
        releases.append(lane.tuple)
        try driver.finish(lane)
    }

    /// Releases what finished cases left, when no round follows to carry it. A failure here is no case's: the
    /// driver restarts the stack.
    func releaseFinished(_ driver: LaneDriver) throws {
        guard !releases.isEmpty else { return }
        defer { releases.removeAll() }
        do {
            _ = try session.target.exchange(calls: releases.map { (.release, $0) }, inject: [], states: [])
        } catch let f as TargetFailure {
            _ = try driver.failed(f, round: [], all: [])
        }
    }
}
