@testable import Model
import Core
import Generator
import Solver
import Spec
import Testing
import TestSupport

/// The class solver (issue 21) against the model it reads: a proof it gives must hold for every TCB the model can
/// be in, and a segment it solves must fall in its class.
@Suite("Class solver")
struct SolverTests {
    /// A model in each state the search reaches, its TCB then scrambled: registers anywhere in 2^32, near each
    /// other, or at the small values the flags take — TCBs no way in may make, which a proof over any TCB covers.
    static func scrambled(_ spec: CompiledSpec, seed: UInt64) -> [TCPModel] {
        var rng = SplitMix64(seed: seed)
        var out: [TCPModel] = []
        let planner = Planner(spec: spec, seed: seed)
        for st in spec.states {
            for way in planner.everyWay[st.state] ?? [] {
                var c = Connection(spec: spec, testerISN: 0, offered: nil)
                for s in way { c.apply(s) }
                for _ in 0..<6 {
                    var m = c.model
                    let base = UInt32(truncatingIfNeeded: rng.next())
                    for r in Register.allCases where rng.next() % 3 == 0 {
                        m.tcb[r] = switch rng.next() % 4 {
                        case 0: UInt32(truncatingIfNeeded: rng.next())
                        case 1: base &+ UInt32(rng.next() % 5) &- 2
                        case 2: UInt32(rng.next() % 3)
                        default: base &+ 0x8000_0000 &+ UInt32(rng.next() % 3) &- 1  // half way round
                        }
                    }
                    out.append(m)
                }
            }
        }
        return out
    }

    @Test("no class an input falls in is ever proven contradictory (linux, rfc9293; scrambled TCBs, boundary inputs)", arguments: ["linux", "rfc9293"])
    func soundness(profile: String) throws {
        let spec = try spec(profile)
        let solver = ClassSolver(spec: spec)
        var sampler = InputSampler(seed: 11)
        var checked = Set<Int>(), contradictory: [String] = []
        for var m in SolverTests.scrambled(spec, seed: 5) {
            let t = spec.table(state: m.state, event: .segment)
            for _ in 0..<200 {
                var s = sampler.segment(for: m)
                if sampler.rng.next() % 3 == 0 { s.ctl.formSymmetricDifference(.syn) }
                if sampler.rng.next() % 4 == 0 { s.tsOld.toggle() }
                if sampler.rng.next() % 4 == 0 { s.oddity = .futureEcho }
                let cell = m.cell(of: .segment(s))
                guard checked.insert(m.state << 24 | cell).inserted else { continue }
                let coords = t.coordinates(of: cell)
                var fixing: [Int: Int] = [:]
                for d in t.dimensions.indices { fixing[d] = coords[d] }
                if case .contradiction(let dims) = solver.decide(state: m.state, event: .segment, fixing: fixing) {
                    contradictory.append("\(m.stateName) \(s) " + dims.map { spec.dimensionName(t.dimensions[$0]) + "=\(coords[$0])" }.joined(separator: " "))
                }
            }
        }
        #expect(checked.count > 500, "classes checked: \(checked.count)")
        #expect(contradictory.isEmpty, "\(contradictory.prefix(3))")
    }

    @Test("the values and pairs the fuzzer leaves out of its universe exclude no class an input falls in, and each class they exclude is proven contradictory (linux)")
    func exclusions() throws {
        let spec = try spec("linux")
        let solver = ClassSolver(spec: spec)
        var sampler = InputSampler(seed: 13)
        var excluded: [Int: ClassSolver.Exclusions] = [:]
        var fell = 0, wrong: [String] = []
        for var m in SolverTests.scrambled(spec, seed: 7) {
            let t = spec.table(state: m.state, event: .segment)
            let x = excluded[m.state] ?? solver.exclusions(state: m.state, event: .segment)
            excluded[m.state] = x
            for _ in 0..<60 {
                var s = sampler.segment(for: m)
                if sampler.rng.next() % 4 == 0 { s.tsOld.toggle() }
                if sampler.rng.next() % 4 == 0 { s.oddity = .futureEcho }
                let cell = m.cell(of: .segment(s))
                fell += 1
                if x.excludes(t.coordinates(of: cell)) { wrong.append("\(m.stateName) \(s)") }
            }
        }
        #expect(fell > 3000)
        #expect(wrong.isEmpty, "\(wrong.count) inputs fell in excluded classes: \(wrong.prefix(3))")
        // The exclusions prove something, and what they exclude the whole-class query proves too.
        let est = spec.states.firstIndex { $0.state == .established }!
        let t = spec.table(state: est, event: .segment)
        let x = excluded[est] ?? solver.exclusions(state: est, event: .segment)
        #expect(x.count.pair > 0)
        var rng = SplitMix64(seed: 3)
        var proofs = 0
        for _ in 0..<4000 where proofs < 40 {
            let cell = Int(rng.next() % UInt64(t.cellCount))
            guard t.cellChains[cell] >= 0, x.excludes(t.coordinates(of: cell)) else { continue }
            var fixing: [Int: Int] = [:]
            for (d, v) in t.coordinates(of: cell).enumerated() { fixing[d] = v }
            proofs += 1
            if case .contradiction = solver.decide(state: est, event: .segment, fixing: fixing) { continue }
            Issue.record("class \(cell) of ESTABLISHED excluded but not proven contradictory")
        }
        // Seeded: 25 of the 4,000 cells sampled are excluded.
        #expect(proofs >= 20)
    }

    @Test("a contradiction is proven with the values that contradict, and only those (linux: a request's `child` against a stale segment)")
    func contradiction() throws {
        let spec = try spec("linux")
        let solver = ClassSolver(spec: spec)
        let st = try #require(spec.stateIndex(named: "SYN-RECEIVED"))
        let t = spec.table(state: st, event: .segment)
        func dim(_ name: String) throws -> Int { try #require(t.dimensions.firstIndex { spec.dimensionName($0) == name }) }
        func value(_ d: Int, _ v: String) throws -> Int {
            guard case .classifier(let k) = t.dimensions[d] else { throw SolverTestError.notAClassifier }
            return try #require(spec.classifiers[k].values.firstIndex(of: v))
        }
        let seq = try dim("seq"), req = try dim("req")
        let verdict = solver.decide(state: st, event: .segment, fixing: [seq: try value(seq, "stale"), req: try value(req, "child")])
        #expect(verdict == .contradiction([seq, req].sorted()))
        // Each alone is possible, and so is `exact` with `child` (the ACK that ends the handshake).
        #expect(solver.decide(state: st, event: .segment, fixing: [seq: try value(seq, "stale")]) == .possible)
        #expect(solver.decide(state: st, event: .segment, fixing: [seq: try value(seq, "exact"), req: try value(req, "child")]) == .possible)
    }

    @Test("a segment solved for a TCB falls in its class, at exact boundaries drawing rarely hits (rfc9293, linux)", arguments: ["rfc9293", "linux"])
    func solvedSegments(profile: String) throws {
        let spec = try spec(profile)
        let solver = ClassSolver(spec: spec)
        var solved = 0, refused = 0
        for var m in SolverTests.scrambled(spec, seed: 9).enumerated().filter({ $0.offset % 7 == 0 }).map(\.element) {
            let t = spec.table(state: m.state, event: .segment)
            let live = t.cellChains.indices.filter { t.cellChains[$0] >= 0 }
            for cell in stride(from: 0, to: live.count, by: max(1, live.count / 40)).map({ live[$0] }) {
                if let s = solver.segment(in: cell, for: m, tsOld: true, futureEcho: true) {
                    solved += 1
                    let falls = m.falls(.segment(s), in: cell)
                    #expect(falls, "\(m.stateName) \(s)")
                    #expect(s.dataLength <= 1428 && s.window <= 65535)
                } else {
                    refused += 1
                }
            }
        }
        #expect(solved > 100 && refused > 0, "solved \(solved), refused \(refused)")
    }

    /// On the ways the planner searches: a class some TCB admits but this way's does not is explained by the one value
    /// (of those a way sets: the kind of open, windows, flags) or tester limit that stands in the way; set to the value
    /// named, the TCB has a segment of the class (an explanation the model refutes — held text the solver leaves
    /// free — is not given).
    @Test("why a class has no segment on a way: the one value that rules it out, and set to the value named, one exists (linux)")
    func blocking() throws {
        let spec = try spec("linux")
        let solver = ClassSolver(spec: spec)
        let planner = Planner(spec: spec, seed: 3)
        var possible = 0, explained = 0, readmitted = 0, resettable = 0, named: [String: Int] = [:], refused: [String] = []
        for st in spec.states {
            for way in (planner.everyWay[st.state] ?? []).prefix(3) where possible < 120 {
                var c = Connection(spec: spec, testerISN: 0, offered: nil)
                for s in way { c.apply(s) }
                let m = c.model
                let t = spec.table(state: m.state, event: .segment)
                let live = t.cellChains.indices.filter { t.cellChains[$0] >= 0 }
                for cell in stride(from: 0, to: live.count, by: max(1, live.count / 60)).map({ live[$0] }) where possible < 120 {
                    guard solver.segment(in: cell, for: m, tsOld: true, futureEcho: true) == nil else { continue }
                    let coords = t.coordinates(of: cell)
                    var fixing: [Int: Int] = [:]
                    for d in t.dimensions.indices { fixing[d] = coords[d] }
                    guard solver.decide(state: m.state, event: .segment, fixing: fixing) == .possible else { continue }
                    possible += 1
                    guard let b = solver.blocking(in: cell, for: m, tsOld: true, futureEcho: true) else { continue }
                    explained += 1
                    for n in b.needs { named[n.what.description, default: 0] += 1 }
                    #expect(!b.needs.isEmpty && b.needs.allSatisfy { $0.now == nil || $0.now != $0.admits }, "\(b)")
                    // Each register named alone admits the class.
                    for n in b.needs {
                        guard case .register(let r) = n.what else { continue }
                        resettable += 1
                        var m2 = m
                        m2.tcb[r] = try #require(n.admits)
                        if solver.segment(in: cell, for: m2, tsOld: true, futureEcho: true) != nil { readmitted += 1 } else { refused.append("\(m.stateName) \(spec.describeCell(state: m.state, event: .segment, cell: cell)) \(n.what)=\(n.admits!)") }
                    }
                }
            }
        }
        #expect(possible > 20 && explained > 5 && resettable > 5 && readmitted == resettable,
                "possible for some TCB \(possible), explained \(explained) (\(named)), registers named \(resettable), admitting when set \(readmitted); not: \(refused.prefix(6))")
    }

    /// Issue 21: a conformance test tries first the ways whose TCB admits its class. The search keeps several ways
    /// into a state (passive and active, socket held or not); a class one of them rules out (the other kind of open,
    /// a window only some set) is admitted by another, which a fixed rotation of ways beside the class's candidates
    /// could miss.
    @Test("the ways a class is tried on first are those whose TCB admits it, each checked by replaying it (linux)")
    func waysAdmitting() throws {
        let spec = try spec("linux")
        let planner = Planner(spec: spec, seed: 5)
        var sampler = InputSampler(seed: 5)
        var classes = 0, notFirst = 0, checked = 0
        for (s, st) in spec.states.enumerated() {
            let ways = planner.everyWay[st.state] ?? []
            guard ways.count > 1 else { continue }
            let t = spec.table(state: s, event: .segment)
            let live = t.cellChains.indices.filter { t.cellChains[$0] >= 0 }
            for cell in stride(from: 0, to: live.count, by: max(1, live.count / 40)).map({ live[$0] }) {
                let admitting = planner.waysAdmitting(state: s, event: .segment, cell: cell)
                #expect(admitting == planner.waysAdmitting(state: s, event: .segment, cell: cell), "cached answers differ")
                guard !admitting.isEmpty else { continue }
                classes += 1
                if admitting.first != ways.first { notFirst += 1 }
                // Every way named admits the class on a replay of it: an input drawn there falls in it.
                for way in admitting {
                    var c = Connection(spec: spec, testerISN: 0, offered: nil)
                    for step in way { c.apply(step) }
                    let step = try #require(planner.input(for: c, state: s, event: .segment, cell: cell, sampler: &sampler, solve: true),
                                            "\(st.state) \(spec.describeCell(state: s, event: .segment, cell: cell)): the way named admits nothing")
                    let input = try #require(c.modelInput(step))
                    #expect(c.model.classify(input).cell == cell)
                    checked += 1
                }
            }
        }
        // Some classes are admitted only by a way other than the search's first into their state. (50 of the classes
        // sampled, in the CI run of 2026-12-07, have a way on which a drawn input falls in them.)
        #expect(classes >= 45 && checked >= classes && notFirst > 0, "classes \(classes), ways checked \(checked), first way not the search's first \(notFirst)")
    }
}

enum SolverTestError: Error { case notAClassifier }
