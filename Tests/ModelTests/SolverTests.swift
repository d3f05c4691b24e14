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
}

enum SolverTestError: Error { case notAClassifier }
