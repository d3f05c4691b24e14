import Core
import Foundation
import Fuzzer
import Generator
import Model
import Solver
import Spec

/// The class solver's cost and what it adds (issue 21), against the drawing it backs up, in the same run: for each
/// way into each state the model search finds, every SEGMENT class of the state, first drawn as the planner draws
/// (120 candidates), then solved for that TCB (up to 250 classes a way); and the conformance suite's proofs (linux,
/// rfc9293): what they prove and what they cost.
enum SolverBench {
    static func run(spec: CompiledSpec) {
        // The fuzzer's universe with and without the classes proven unreachable (`proveUniverse`): what the proofs
        // take out and what they cost at start, beside the planner's own start.
        let p0 = now()
        let planner = Planner(spec: spec, seed: 1)
        let p1 = now()
        let proving = Planner(spec: spec, seed: 1, proveUniverse: true)
        let p2 = now()
        print(String(format: "solver %@: the fuzzer's universe %d classes, %d of them proven unreachable by contradicting values or pairs (%.0f%%; left out, %d remain); planner start %.2f s, %.2f s with the proofs (%.1f×; %d solver checks for %d values and pairs)",
                     spec.profile, planner.universe.count, proving.provenUnreachable, 100 * Double(proving.provenUnreachable) / Double(max(planner.universe.count, 1)),
                     proving.universe.count, Double(p1 - p0) / 1e9, Double(p2 - p1) / 1e9, Double(p2 - p1) / Double(max(p1 - p0, 1)), proving.proofChecks, proving.proofQuestions))
        let solver = ClassSolver(spec: spec)
        var sampler = InputSampler(seed: 1)
        var classes = 0, drawn = 0, solvedOnly = 0, neither = 0
        var drawNs: UInt64 = 0, solveNs: UInt64 = 0, solves = 0
        // Why no segment, for one pair in ten of those with none (`ClassSolver.blocking`, what conform reports).
        var blockTimes: [Double] = [], explained = 0, blockedBy: [String: Int] = [:]
        for st in spec.states {
            // Each way into the state, and up to 250 of its classes (evenly spread over the table).
            for way in planner.everyWay[st.state] ?? [] {
                var c = Connection(spec: spec, testerISN: 0, offered: nil)
                for s in way { c.apply(s) }
                var m = c.model
                let t = spec.table(state: m.state, event: .segment)
                let live = t.cellChains.indices.filter { t.cellChains[$0] >= 0 }
                for cell in stride(from: 0, to: live.count, by: max(1, live.count / 250)).map({ live[$0] }) {
                    classes += 1
                    let t0 = now()
                    var hit = false
                    let bits = planner.controlBits(state: m.state, cell: cell)
                    for _ in 0..<120 where !hit {
                        hit = m.falls(.segment(Planner.candidate(sampler.segment(for: m), bits: bits)), in: cell)
                    }
                    let t1 = now()
                    let solved = solver.segment(in: cell, for: m, tsOld: InputSampler.pawsApplies(m), futureEcho: m[.tsOK] == 1) != nil
                    let t2 = now()
                    drawNs += t1 - t0
                    solveNs += t2 - t1
                    solves += 1
                    if hit { drawn += 1 } else if solved { solvedOnly += 1 } else { neither += 1 }
                    if !hit, !solved, neither % 10 == 1 {
                        let b0 = now()
                        let b = solver.blocking(in: cell, for: m, tsOld: InputSampler.pawsApplies(m), futureEcho: m[.tsOK] == 1)
                        blockTimes.append(Double(now() - b0) / 1e6)
                        if let b {
                            explained += 1
                            blockedBy[b.needs.map(\.what.description).sorted().joined(separator: " + "), default: 0] += 1
                        }
                    }
                }
            }
        }
        let drawMs = Double(drawNs) / 1e6 / Double(max(1, classes)), solveMs = Double(solveNs) / 1e6 / Double(max(1, solves))
        print(String(format: "solver %@: %d (way, class) pairs: drawn %d, solved only %d, neither %d (no segment for that TCB); per class: drawing (120 candidates) %.3f ms, solving %.3f ms (%.1fx)",
                     spec.profile, classes, drawn, solvedOnly, neither, drawMs, solveMs, solveMs / max(drawMs, 1e-9)))
        blockTimes.sort()
        print(String(format: "solver %@: why no segment, %d of those pairs asked: %d explained (the rest contradict whatever the TCB, or undecided); per pair median %.1f ms, p90 %.1f, max %.1f",
                     spec.profile, blockTimes.count, explained, blockTimes.isEmpty ? 0 : blockTimes[blockTimes.count / 2],
                     blockTimes.isEmpty ? 0 : blockTimes[blockTimes.count * 9 / 10], blockTimes.last ?? 0))
        for (k, n) in blockedBy.sorted(by: { $0.value > $1.value }).prefix(8) { print("  \(n) × ruled out by \(k)") }
        // The conformance suite's proofs, as `tcpspec conform` asks them (every group of tests sharing their classes,
        // here all of them, where conform asks only those no drawn input reached).
        for profile in [spec.profile, "rfc9293"] {
            guard let sp = profile == spec.profile ? spec : SpecLoader.compile(profile: profile, directory: specDir()).spec else { continue }
            let proofSolver = ClassSolver(spec: sp)
            var groups: [[ConformCase]] = []
            var index: [String: Int] = [:]
            for t in ConformSuite.build(sp) where Planner.drives(t.event, under: sp) && !t.event.isTimeout {
                let k = "\(t.state)|\(t.event.rawValue)|\(t.cells)"
                if let i = index[k] { groups[i].append(t) } else { index[k] = groups.count; groups.append([t]) }
            }
            var proven = 0, times: [Double] = []
            let p0 = now()
            for g in groups {
                let q0 = now()
                if ConformSuite.contradiction(g, spec: sp, solver: proofSolver) != nil { proven += g.count }
                times.append(Double(now() - q0) / 1e6)
            }
            let total = Double(now() - p0) / 1e9
            times.sort()
            func pct(_ p: Double) -> Double { times.isEmpty ? 0 : times[min(times.count - 1, Int(Double(times.count) * p))] }
            print(String(format: "solver %@: conformance suite, %d groups of tests: %d tests proven unreachable, %d queries undecided; %.1f s (per group median %.1f ms, p90 %.1f, max %.1f)",
                         sp.profile, groups.count, proven, proofSolver.undecided, total, pct(0.5), pct(0.9), times.last ?? 0))
        }
    }
}

