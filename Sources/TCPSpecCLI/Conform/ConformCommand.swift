import Core
import ArgumentParser
import Foundation
import Fuzzer
import Link
import Report
import Spec
import Targets

/// The conformance report for CI: a deterministic suite generated from the spec (one test per rule and per
/// partition of its guard), run against a target, written as JUnit XML, Markdown, HTML with the state diagram,
/// and JSON; each divergence minimized and kept as a case with its pcap.
///
/// ```
/// $ tcpspec conform --target linux --profile linux --out out/conform
/// $ tcpspec conform --target linux --profile rfc9293 --out out/conform --baseline Spec/baselines/linux-rfc9293.toml
/// $ tcpspec conform --target linux --profile linux --out out/shard-2 --shard 2/4
/// ```
struct ConformCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conform",
        abstract: "Run the conformance suite generated from the spec; write JUnit, Markdown, HTML and JSON reports.",
        discussion: """
            The warm-up is bounded by cases (\(ConformCommand.defaultWarmupCases) unless --warmup-cases or --warmup says otherwise), so that \
            the same seed reaches the same tests on any machine; --warmup DURATION bounds it by time instead.
            Every divergence is classed by RFC 9293: violates (a MUST, or a clause with no permitted alternative), deviates \
            (a SHOULD), choice (an alternative the RFC permits) or unspecified (no clause decides); each names the \
            requirement IDs it breaks.
            Exit codes: 0 when no test violates the RFC and none is in error (deviations fail too under --strict; with \
            --baseline, failing divergences the baseline lists are accepted and, with --strict-baseline, every baseline entry \
            must be seen); 1 otherwise; 2 or more when the run could not be made.
            """
    )

    @OptionGroup var specOptions: SpecOptions
    @OptionGroup var targetOptions: TargetOptions
    @Option(help: "Directory for report.xml (JUnit), summary.md, report.html, report.json and cases/.") var out: String = "out/conform"
    @Option(help: "A reviewed baseline (TOML): divergences listed there do not fail the run.") var baseline: String?
    @Option(help: "Run one shard of the suite, i/n (1-based), e.g. 2/4.") var shard: String = "1/1"
    @Option(parsing: .unconditional, help: "The seed for drawing inputs, 0 to 2^64-1 (the suite itself is fixed).") var seed: UInt64 = 1
    @Option(help: "Connections in flight at once.") var lanes: Int = 64
    @Option(help: "Warm up with this many seeded fuzz cases first, to find ways into input classes the model's own search does not set up (default \(ConformCommand.defaultWarmupCases); the same seed then reaches the same classes on any machine).") var warmupCases: Int?
    @Option(help: "Warm up for this long instead (e.g. 3s; 0 to skip): a time bound, so a faster machine reaches more.") var warmup: String?
    @Flag(help: "With --baseline: a baseline entry this run did not see fails the run too (the baseline is stale).") var strictBaseline = false
    @Flag(help: "Say why each test whose class had no segment missed it: the values of the way's TCB that rule the class out (the class solver; slow: about doubles the run against Linux).") var explainMisses = false
    @Flag(help: "Deviations from a SHOULD fail the run, as violations do.") var strict = false

    static let defaultWarmupCases = 3000

    func validate() throws {
        if let w = warmup, Durations.seconds(w) == nil { throw ValidationError("--warmup takes a duration with a unit, like 3s or 500ms, or 0 to skip") }
        if warmup != nil && warmupCases != nil { throw ValidationError("--warmup and --warmup-cases bound the same warm-up: give one") }
        if let n = warmupCases, n < 0 { throw ValidationError("--warmup-cases is 0 or more") }
        if strictBaseline && baseline == nil { throw ValidationError("--strict-baseline needs --baseline") }
        guard Self.parseShard(shard) != nil else { throw ValidationError("--shard is i/n with 1 <= i <= n, e.g. 2/4") }
        guard lanes >= 1 && lanes <= 4096 else { throw ValidationError("--lanes is 1 to 4096") }
    }

    static func parseShard(_ s: String) -> (Int, Int)? {
        let p = s.split(separator: "/")
        guard p.count == 2, let i = Int(p[0]), let n = Int(p[1]), n >= 1, i >= 1, i <= n else { return nil }
        return (i, n)
    }

    func run() throws {
        // Read the baseline first: a bad one must fail before any work is done.
        let entries = try baseline.map(ConformOutput.readBaseline)
        let spec = try specOptions.compile()
        // Bad choices fail before anything starts.
        let choices = try specOptions.choices(for: spec)
        try OutputDirectory.prepare(out, option: "--out")
        RunScope.begin("conform")
        let target = try TargetFactory.make(targetOptions.target, options: targetOptions, profile: specOptions.profile, specDir: specOptions.resolvedSpecDir())
        defer { target.close() }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var config = Fuzzer.Configuration()
        config.seed = seed
        config.lanes = lanes
        config.corpus = (out as NSString).appendingPathComponent("cases")
        // The report is one run's: the cases a previous run wrote there would be taken as known divergences (not
        // written again, so this report would name no case for them) and pile up. Only tcpspec's own files go.
        ConformOutput.clearCases(config.corpus!)
        config.targetName = targetOptions.target
        config.maxWait = targetOptions.maxWaitSeconds
        config.explainMisses = explainMisses
        config.testerOptions = targetOptions.testerOffer
        config.choices = choices
        try specOptions.validate(choices)
        let fuzzer = Fuzzer(spec: spec, target: target, configuration: config)
        let tty = isatty(2) != 0
        // By cases unless a time was asked for: the same seed then gives the same tests on any machine.
        let seconds = warmup.flatMap(Durations.seconds) ?? 0
        let cases = warmup == nil ? (warmupCases ?? Self.defaultWarmupCases) : nil
        var report = try fuzzer.conform(shard: Self.parseShard(shard)!, warmup: seconds, warmupCases: cases.flatMap { $0 > 0 ? $0 : nil }) { done, total in
            guard tty else { return }
            FileHandle.standardError.write(Data(String(format: "\r\u{1B}[2Kconform: %d/%d input classes", done, total).utf8))
        }
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        report.settings["warmup"] = cases.map { "\($0) cases" } ?? (warmup ?? "")
        report.strict = strict
        if let entries, let path = baseline { Baseline.apply(entries, file: path, to: &report) }
        let paths = try ConformOutput.write(report, spec: spec, specDir: specOptions.resolvedSpecDir(), to: out)
        print(ConformOutput.summaryLine(report) + "\n" + paths)
        try ConformOutput.exit(for: report, strictBaseline: strictBaseline)
    }
}

/// Merges the reports (and case directories) of shards into one report.
///
/// ```
/// $ tcpspec merge out/shard-1 out/shard-2 out/shard-3 out/shard-4 --out out/conform
/// ```
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge conform reports and their cases from shards into one report (JUnit, Markdown, HTML, JSON)."
    )

    @Argument(help: "Shard output directories (each with report.json).") var shards: [String]
    @Option(help: "Directory for the merged report.") var out: String = "out/conform"
    @Option(help: "A reviewed baseline (TOML) to apply to the merged report.") var baseline: String?
    @Flag(help: "With --baseline: a baseline entry no shard saw fails the merge too.") var strictBaseline = false
    @Flag(help: "Deviations from a SHOULD fail the merge, as violations do.") var strict = false
    @OptionGroup var specOptions: SpecOptions

    func run() throws {
        try OutputDirectory.prepare(out, option: "--out")
        var reports: [ConformReport] = []
        for dir in shards {
            let path = (dir as NSString).appendingPathComponent("report.json")
            guard let data = FileManager.default.contents(atPath: path) else { throw ConformFailure("\(path): no report (run tcpspec conform --out \(dir) first)") }
            do {
                reports.append(try JSONDecoder().decode(ConformReport.self, from: data))
            } catch {
                throw ConformFailure("\(path): not a tcpspec conform report (\(error))")
            }
        }
        guard var merged = ConformReport.merge(reports) else { throw ConformFailure("nothing to merge") }
        merged.strict = strict
        if Set(reports.map(\.profile)).count > 1 || Set(reports.map(\.target)).count > 1 {
            throw ConformFailure("the shards ran different targets or profiles: \(Set(reports.map { "\($0.target)/\($0.profile)" }).sorted().joined(separator: ", "))")
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        // Cases: copy each shard's, keeping the first of a name; paths in the report point into the merged dir.
        let fm = FileManager.default
        let casesOut = (out as NSString).appendingPathComponent("cases")
        try fm.createDirectory(atPath: casesOut, withIntermediateDirectories: true)
        for dir in shards {
            let src = (dir as NSString).appendingPathComponent("cases")
            for f in (try? fm.contentsOfDirectory(atPath: src)) ?? [] where !fm.fileExists(atPath: (casesOut as NSString).appendingPathComponent(f)) {
                try fm.copyItem(atPath: (src as NSString).appendingPathComponent(f), toPath: (casesOut as NSString).appendingPathComponent(f))
            }
        }
        for i in merged.results.indices {
            for kp in [\ConformResult.casePath, \ConformResult.pcapPath] {
                if let p = merged.results[i][keyPath: kp] { merged.results[i][keyPath: kp] = (casesOut as NSString).appendingPathComponent((p as NSString).lastPathComponent) }
            }
        }
        if let path = baseline { Baseline.apply(try ConformOutput.readBaseline(path), file: path, to: &merged) }
        let spec = try? specOptions.compile(profile: merged.profile)
        let paths = try ConformOutput.write(merged, spec: spec, specDir: specOptions.resolvedSpecDir(), to: out)
        print(ConformOutput.summaryLine(merged) + "\n" + paths)
        try ConformOutput.exit(for: merged, strictBaseline: strictBaseline)
    }
}

struct ConformFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

enum ConformOutput {
    /// Removes the cases and pcaps a previous run wrote under `dir` (`NNN-name.case`/`.pcap`, also in
    /// `timing-dependent/`), and nothing else.
    static func clearCases(_ dir: String) {
        let fm = FileManager.default
        for sub in [dir, (dir as NSString).appendingPathComponent("timing-dependent")] {
            for name in (try? fm.contentsOfDirectory(atPath: sub)) ?? []
            where (name.hasSuffix(".case") || name.hasSuffix(".pcap")) && CorpusWriter.number(of: name) != nil {
                try? fm.removeItem(atPath: (sub as NSString).appendingPathComponent(name))
            }
        }
    }

    static func readBaseline(_ path: String) throws -> [BaselineEntry] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConformFailure("cannot read baseline \(path)") }
        do { return try Baseline.parse(text, file: path) } catch let f as Baseline.Failure { throw ConformFailure(f.description) }
    }

    /// Exit 1 on an error, or on a divergence the baseline (if any) does not accept, or (`strictBaseline`) on a
    /// baseline entry not seen.
    static func exit(for r: ConformReport, strictBaseline: Bool = false) throws {
        let strict = r.strict ?? false
        let newFailing = r.baseline.map { $0.new.contains { r.signatureFails($0, strict: strict) } }
        let failing = r.baseline.map { _ in newFailing! || (strictBaseline && !r.baseline!.stale.isEmpty) }
            ?? r.results.contains { $0.verdict == .diverges && r.fails($0) }
        if strictBaseline, let b = r.baseline, !b.stale.isEmpty {
            FileHandle.standardError.write(Data(("baseline entries this run did not see (--strict-baseline):\n" + b.stale.map { "  \($0)\n" }.joined()).utf8))
        }
        if failing || r.count(.error) > 0 { throw ExitCode(1) }
    }

    static func summaryLine(_ r: ConformReport) -> String {
        var s = "conform \(r.target) against profile \(r.profile): \(r.results.count) tests in \(String(format: "%.1f", r.seconds)) s — "
        s += "\(r.count(.conforms)) conform" + (r.equivalentCount > 0 ? " (\(r.equivalentCount) with a reset's ACK differing only)" : "")
        s += ", \(r.count(.diverges)) diverge (\(r.classCounts)), \(r.count(.unreachable)) unreachable (\(r.provenCount) proven), \(r.count(.error)) error"
        if let b = r.baseline { s += "; baseline: \(b.accepted) accepted, \(b.new.count) new, \(b.stale.count) no longer seen" }
        for l in r.choiceLines { s += "\n" + l }
        if let rules = r.options, !rules.isEmpty { s += "\n" + ConformReport.optionLine(rules) }
        return s
    }

    /// Writes every format, each file whole or not at all (`AtomicFile`); returns the lines naming them.
    static func write(_ r: ConformReport, spec: CompiledSpec?, specDir: String, to dir: String) throws -> String {
        func path(_ f: String) -> String { (dir as NSString).appendingPathComponent(f) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(enc.encode(r), to: path("report.json"))
        try AtomicFile.write(ConformRender.junit(r), to: path("report.xml"))
        try AtomicFile.write(ConformRender.markdown(r), to: path("summary.md"))
        var svg: String?
        if let spec {
            let colors = ConformRender.edgeColors(r)
            let dot = StateGraph.dot(spec) { from, to in colors["\(spec.states[from].name)|\(spec.states[to].name)"] ?? "#9e9e9e" }
            try AtomicFile.write(dot, to: path("states.dot"))
            if let data = try? Graphviz.render(dot, format: "svg") {
                svg = String(decoding: data, as: UTF8.self)
                try AtomicFile.write(data, to: path("states.svg"))
            }
        }
        try AtomicFile.write(ConformRender.html(r, svg: svg), to: path("report.html"))
        try AtomicFile.write(enc.encode(Sarif.log(r, spec: spec, catalog: try? RequirementCatalog.load(directory: specDir), directory: dir)), to: path("report.sarif"))
        return ["report.xml (JUnit)", "summary.md", "report.html", "report.json", "report.sarif (SARIF 2.1.0)", "cases/"].map { "  " + path($0) }.joined(separator: "\n")
    }
}
