import Core
import Cases
import Checker
import Foundation
import Link
import Spec
import Targets
import TestSupport
import Testing

/// Every corpus case, replayed many times against the real kernel and against the reference target, must get
/// the same verdict each time, step by step: a case whose verdict depends on timing is a bug in the oracle
/// (a wait too short, a segment taken for another), never a reason to skip the case.
///
/// The number of replays is `TCPSPEC_REPLAYS` (default 5, so that CI stays short; the figure in the issue's
/// closing note is from `TCPSPEC_REPLAYS=100`); `TCPSPEC_REPLAY_JOBS` replays run at once (default 4), each on
/// a target of its own (its own namespaces), which also puts the oracle's waits under load:
///
/// ```
/// $ TCPSPEC_REPLAYS=100 swift test --skip-build --filter ReplayDeterminism
/// ```
@Suite("Replay determinism: every corpus case gets the same verdict every time", .serialized)
struct ReplayDeterminismTests {
    static let replays = ProcessInfo.processInfo.environment["TCPSPEC_REPLAYS"].flatMap(Int.init) ?? 5
    static let jobs = ProcessInfo.processInfo.environment["TCPSPEC_REPLAY_JOBS"].flatMap(Int.init) ?? 4

    /// Every case under Corpus/, parsed.
    static func corpus() throws -> [CaseFile] {
        let root = Repository.url("Corpus").path
        var out: [CaseFile] = []
        for rel in (FileManager.default.subpaths(atPath: root) ?? []).sorted() where rel.hasSuffix(".case") {
            let path = root + "/" + rel
            let (file, diags) = CaseParser.parse(path: path, text: try String(contentsOfFile: path, encoding: .utf8))
            #expect(diags.isEmpty, "\(path): \(diags.map(\.rendered))")
            out.append(file)
        }
        return out
    }

    /// A run's verdict, step by step: what each line concluded and why — what must not change between runs.
    static func verdict(_ r: CaseResult) -> [String] {
        r.steps.map { s in
            switch s.verdict {
            case .ok: "\(s.line) ok"
            case .sent: "\(s.line) sent"
            case .mismatch(let why): "\(s.line) MISMATCH \(why.joined(separator: "; "))"
            case .error(let e): "\(s.line) ERROR \(e)"
            }
        }
    }

    /// Runs `body(case index, replay)` for every case and replay, `jobs` at a time; results by case.
    typealias Run = (verdict: [String], frames: [Frame])

    static func replayAll(_ cases: [CaseFile], jobs: Int, _ body: @escaping @Sendable (CaseFile) throws -> Run) -> [[Result<Run, Error>]] {
        let work = cases.indices.flatMap { c in (0..<replays).map { (c, $0) } }
        let results = Locked([[Result<Run, Error>]](repeating: [], count: cases.count))
        let next = Locked(0)
        let group = DispatchGroup()
        for _ in 0..<max(1, jobs) {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while true {
                    let i = next.withLock { v -> Int in v += 1; return v - 1 }
                    guard i < work.count else { return }
                    let file = cases[work[i].0]
                    let r = Result { try body(file) }
                    results.withLock { $0[work[i].0].append(r) }
                }
            }
        }
        group.wait()
        return results.withLock { $0 }
    }

    /// Reports each case whose runs did not all agree, with each distinct verdict and how often it came.
    /// The pcaps of runs whose verdict was not the most common one go here, as evidence for the fix.
    static let evidence = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-replay-differing").path

    static func check(_ cases: [CaseFile], _ results: [[Result<Run, Error>]], target: String) {
        var flaky: [String] = []
        for (c, runs) in results.enumerated() {
            #expect(runs.count == replays, "\(cases[c].path): \(runs.count) of \(replays) replays ran")
            var seen: [String: Int] = [:]
            func key(_ r: Result<Run, Error>) -> String {
                switch r {
                case .success(let v): v.verdict.joined(separator: " | ")
                case .failure(let e): "could not run: \(e)"
                }
            }
            for r in runs { seen[key(r), default: 0] += 1 }
            if seen.count != 1 {
                let common = seen.max { $0.value < $1.value }!.key
                var pcaps: [String] = []
                for (k, r) in runs.enumerated() where key(r) != common {
                    guard case .success(let v) = r else { continue }
                    let path = "\(evidence)/\(target)-\(URL(fileURLWithPath: cases[c].path).deletingPathExtension().lastPathComponent)-\(k).pcap"
                    try? FileManager.default.createDirectory(atPath: evidence, withIntermediateDirectories: true)
                    if (try? PcapWriter.write(v.frames, linkType: .ethernet, to: path)) != nil { pcaps.append(path) }
                }
                flaky.append("\(cases[c].path) against \(target):\n" + seen.sorted { $0.value > $1.value }.map { "  \($0.value)×  \($0.key)" }.joined(separator: "\n")
                             + (pcaps.isEmpty ? "" : "\n  pcaps of the differing runs: " + pcaps.joined(separator: ", ")))
            }
        }
        #expect(flaky.isEmpty, "\(flaky.count) of \(cases.count) cases got different verdicts in \(replays) replays:\n\(flaky.joined(separator: "\n"))")
        print("replay determinism: \(cases.count) cases × \(replays) replays against \(target): \(cases.count - flaky.count) identical every time")
    }

    @Test("against the reference target (the profile of the case's corpus)")
    func reference() throws {
        let cases = try Self.corpus()
        #expect(cases.count >= 40, "the corpus has \(cases.count) cases")
        // Linux's cases against the linux profile, the others against RFC 9293: each compiled once.
        var specs: [String: CompiledSpec] = [:]
        for p in ["linux", "rfc9293"] { specs[p] = try Repository.spec(p) }
        let bySpec = specs
        let results = Self.replayAll(cases, jobs: Self.jobs) { file in
            let spec = file.path.contains("/Corpus/linux/") ? bySpec["linux"]! : bySpec["rfc9293"]!
            let target = ReferenceTarget(spec: spec)
            defer { target.close() }
            let runner = CaseRunner(target: target, file: file)
            return (Self.verdict(runner.run()), runner.frames)
        }
        Self.check(cases, results, target: "reference")
    }

    @Test("against the Linux kernel, each replay in namespaces of its own")
    func linux() throws {
        // lwIP's findings start with steps Linux does not take (no simultaneous open in lwIP): against Linux they
        // leave the script at once and the rest is Linux answering another conversation (a new connection's
        // random ISN in its reset), which is no verdict to hold steady. They are replayed against lwIP
        // (UserspaceTargetTests) and against the reference target here.
        let cases = try Self.corpus().filter { !$0.path.contains("/Corpus/lwip/") }
        #expect(cases.count >= 40, "the corpus has \(cases.count) cases")
        let t0 = Date()
        let results = Self.replayAll(cases, jobs: Self.jobs) { file in
            // With the settings the case records (its sysctls, the application's keep-alives and R2), as `tcpspec run`.
            let target = try LinuxTarget(Topology.Configuration().applying(caseOptions: file.options))
            defer { target.close() }
            let runner = CaseRunner(target: target, file: file)
            return (Self.verdict(runner.run()), runner.frames)
        }
        Self.check(cases, results, target: "linux")
        print(String(format: "replay determinism: linux: %d replays in %.1f s (%d at a time)", cases.count * Self.replays, Date().timeIntervalSince(t0), Self.jobs))
    }
}

/// A value shared between the replay threads.
final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func withLock<R>(_ f: (inout T) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try f(&value)
    }
}
