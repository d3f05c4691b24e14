import Core
import Foundation
import Generator
import Link
import Model
import Oracle
import Spec
import Targets
import Wire

/// What one step showed of a target, in the connection's relative numbers: what the oracle compares between
/// two stacks (no windows, options or PSH: each stack's own business).
struct Observation: Hashable, Sendable, CustomStringConvertible {
    var segments: [SegmentKey]
    var state: TCPState?
    /// The stack failed as a program at this step (its state is then the failure's kind).
    var failure: TargetFailure.Kind?
    var errno: Int32?

    init(_ l: StepLog) {
        segments = SegmentKey.normalize(l.observed)
        state = l.observedState
        errno = l.callResult.map(\.errno)
        if case .failure(let kind, _) = l.mismatches.first { failure = kind }
    }

    /// The state as reports write it: the failure's kind in capitals where the stack failed.
    var stateText: String { failure.map { $0.rawValue.uppercased() } ?? state?.rawValue ?? "?" }

    var description: String {
        (segments.isEmpty ? "nothing" : segments.map(\.description).joined(separator: ", ")) + " → \(stateText)"
            + (errno.map { $0 == 0 ? "" : ", call fails \(Errno.name($0))" } ?? "")
    }

    /// The observation without its numbers: what a difference's signature keys on.
    var shapeKey: Shape { Shape(segments: segments.map { Signature.Shape(ctl: $0.ctl, text: $0.length > 0) }, state: stateText, errno: errno) }

    struct Shape: Hashable, Sendable, CustomStringConvertible {
        var segments: [Signature.Shape]
        var state: String
        var errno: Int32?
        var description: String {
            (segments.isEmpty ? "none" : segments.map(\.description).joined(separator: ",")) + " → \(state)"
                + (errno.map { $0 == 0 ? "" : " (\(Errno.name($0)))" } ?? "")
        }
    }

    /// Whether two stacks agree on this step. A state only one side can report is not compared.
    func agrees(with o: Observation) -> Bool {
        guard segments == o.segments || SegmentKey.coalesced(segments) == o.segments || segments == SegmentKey.coalesced(o.segments) else { return false }
        if failure != o.failure { return false }
        if let a = state, let b = o.state, a != b { return false }
        if let a = errno, let b = o.errno, a != b { return false }
        return true
    }
}

/// What identifies a difference between two stacks: the state, the kind of step, and each side's observation
/// without its numbers; `description` is the text kept in case files and JSON.
public struct DifferenceSignature: Hashable, Sendable, CustomStringConvertible {
    var state: TCPState
    var step: String
    var names: [String]
    var a: Observation.Shape
    var b: Observation.Shape
    public var description: String { "\(state) | \(step) | \(names[0]): \(a) | \(names[1]): \(b)" }
}

/// A behaviour two stacks do not share: the same steps, and at step `at` different observations.
public struct Difference: Sendable {
    public var signature: DifferenceSignature
    public var steps: Int
    public var at: Int
    public var stateBefore: TCPState
    public var input: String
    public var a: String
    public var b: String
    public var testerISN: UInt32
    public var testerOptions: TesterOptions = .mssOnly
    public var casePath: String?
    public var pcapPaths: [String] = []
}

public struct DiffSummary: Sendable {
    public var cases = 0
    public var seconds = 0.0
    public var differences: [Difference] = []
    public var casesPerSecond: Double { seconds > 0 ? Double(cases) / seconds : 0 }
}

/// Differential mode: the cases the model generates run against two targets; where their observable behaviour
/// differs — independent of the spec — the difference is minimized and kept as a case whose expectations are
/// target A's behaviour (so replaying it against B shows the difference) with a pcap of each.
///
/// ```
/// $ tcpspec diff --target linux --target pytcp --duration 60s --out out/diff
/// ```
public final class Differ {
    let a: Fuzzer
    let b: Fuzzer
    let names: (String, String)
    var seen: Set<DifferenceSignature> = []
    public private(set) var summary = DiffSummary()
    let out: String?

    public init(spec: CompiledSpec, a: Target, b: Target, names: (String, String), configuration: Fuzzer.Configuration, out: String?) {
        var config = configuration
        // Generation runs on A; its own divergences from the spec are not this mode's business.
        config.corpus = nil
        config.minimize = false
        self.a = Fuzzer(spec: spec, target: a, configuration: config)
        self.b = Fuzzer(spec: spec, target: b, configuration: config)
        self.names = names
        self.out = out
    }

    /// Both targets' observations of the steps, replayed alone, to the end (not stopping where one leaves
    /// the model), and the first step where they differ.
    func compare(_ steps: [FuzzStep], isn: UInt32, options: TesterOptions) throws -> (steps: [FuzzStep], logs: ([StepLog], [StepLog]), frames: ([Frame], [Frame]), at: Int?) {
        guard let ra = try a.replay(steps, isn: isn, options: options, untilDivergence: false) else { return (steps, ([], []), ([], []), nil) }
        guard let rb = try b.replay(ra.steps, isn: isn, options: options, untilDivergence: false) else { return (ra.steps, (ra.log, []), (ra.frames, []), nil) }
        let n = min(ra.log.count, rb.log.count)
        let at = (0..<n).first { !Observation(ra.log[$0]).agrees(with: Observation(rb.log[$0])) }
        return (ra.steps, (ra.log, rb.log), (ra.frames, rb.frames), at)
    }

    func signature(_ la: StepLog, _ lb: StepLog) -> DifferenceSignature {
        DifferenceSignature(state: la.stateBefore, step: la.step.kindName, names: [names.0, names.1], a: Observation(la).shapeKey, b: Observation(lb).shapeKey)
    }

    public func run(duration: Double, maxCases: Int? = nil, progress: ((DiffSummary) -> Void)? = nil) throws -> DiffSummary {
        let start = MonotonicClock().now
        var last = start
        // Each case the fuzzer finishes on A is run alone on both targets and compared.
        a.onFinish = { [unowned self] lane in
            summary.cases += 1
            guard !lane.steps.isEmpty else { return }
            let r = try compare(lane.steps, isn: lane.testerISN, options: lane.agreement.offer)
            if let at = r.at {
                let sig = signature(r.logs.0[at], r.logs.1[at])
                if seen.insert(sig).inserted { try keep(sig, steps: Array(r.steps.prefix(at + 1)), isn: lane.testerISN, options: lane.agreement.offer) }
            }
            let now = MonotonicClock().now
            if let progress, now - last >= 0.25 {
                last = now
                summary.seconds = now - start
                progress(summary)
            }
        }
        defer { a.onFinish = nil }
        _ = try a.run(limits: .init(duration: duration, maxCases: maxCases), keeping: .init(corpus: nil, minimize: false))
        summary.seconds = MonotonicClock().now - start
        return summary
    }

    /// Minimizes a difference (the smallest steps whose first difference has the same signature) and writes it.
    func keep(_ sig: DifferenceSignature, steps: [FuzzStep], isn: UInt32, options: TesterOptions) throws {
        typealias Evidence = (logs: ([StepLog], [StepLog]), frames: ([Frame], [Frame]), at: Int)
        let m = Minimizer<Evidence>(reproduces: { candidate in
            let r = try self.compare(candidate, isn: isn, options: options)
            guard let at = r.at, self.signature(r.logs.0[at], r.logs.1[at]) == sig else { return nil }
            return (Array(r.steps.prefix(at + 1)), (r.logs, r.frames, at))
        }, asFound: { candidate in
            let r = try self.compare(candidate, isn: isn, options: options)
            return (r.steps, (r.logs, r.frames, r.at ?? max(0, min(r.logs.0.count, r.logs.1.count) - 1)))
        })
        let best = try m.minimize(steps)
        let (logs, frames, at) = best.evidence
        guard at < logs.0.count, at < logs.1.count else { return }
        let la = logs.0[at], lb = logs.1[at]
        var d = Difference(signature: sig, steps: at + 1, at: at, stateBefore: la.stateBefore, input: a.describeInput(la),
                           a: Observation(la).description, b: Observation(lb).description, testerISN: isn)
        d.testerOptions = options
        if let dir = out {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let base = (dir as NSString).appendingPathComponent(String(format: "%03d-", summary.differences.count) + CorpusWriter.slug(la.stateBefore.rawValue + " " + d.input))
            d.casePath = base + ".case"
            try AtomicFile.write(render(d, Array(logs.0.prefix(at + 1)), Array(logs.1.prefix(at + 1))), to: d.casePath!)
            for (name, f, t) in [(names.0, frames.0, a.target), (names.1, frames.1, b.target)] {
                let p = base + "." + CorpusWriter.slug(name) + ".pcap"
                try PcapWriter.write(f, linkType: t.link.linkType, to: p)
                d.pcapPaths.append(p)
            }
        }
        summary.differences.append(d)
    }

    /// The case: the steps, with A's behaviour as the expectations; B's where it differs, as comments.
    func render(_ d: Difference, _ la: [StepLog], _ lb: [StepLog]) -> String {
        var out = "# Difference between \(names.0) and \(names.1), minimized to \(d.steps) steps.\n"
        out += "# In \(d.stateBefore), on \(d.input): \(names.0) did \(d.a); \(names.1) did \(d.b).\n"
        out += "# The expectations below are \(names.0)'s behaviour: replay against \(names.1) to see the difference.\n"
        out += "# \(names.0): " + settingsLine(a.target.settings) + "\n"
        out += "# \(names.1): " + settingsLine(b.target.settings) + "\n"
        out += "# signature: " + d.signature.description + "\n"
        out += "option tester-isn \(d.testerISN)\n"
        out += "option tester-options \(d.testerOptions)\n"
        for (i, l) in la.enumerated() {
            out += CaseText.stepLine(l.step, offer: d.testerOptions, stateBefore: l.stateBefore)
            if case .accept = l.step {} else {
                if l.observed.isEmpty { out += "> none\n" }
                for s in l.observed { out += CaseText.segmentLine(">", { var x = s; x.ctl.remove(.psh); return x }(), expectation: true) + "\n" }
            }
            if let s = l.observedState, lb.indices.contains(i), lb[i].observedState != nil { out += "state \(s)\n" }
            if i == la.count - 1, lb.indices.contains(i) {
                let o = lb[i]
                let segs = o.observed.isEmpty ? ["> none"] : o.observed.map { CaseText.segmentLine(">", $0, expectation: false) }
                out += "# \(names.1): " + segs.joined(separator: "; ") + (o.observedState.map { "; state \($0)" } ?? "") + "\n"
                for m in o.mismatches where m.isFailure { out += "# ^ \(m)\n" }
            }
        }
        return out
    }
}
