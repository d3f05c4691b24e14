import Core
import ArgumentParser
import Foundation
import Fuzzer
import Report
import Spec
import Targets

/// The main job: fuzz a TCP stack against the spec, guided by the model's input classes.
///
/// ```
/// $ tcpspec fuzz --target linux --profile rfc9293 --duration 60s --seed 1 --corpus Corpus/linux
/// $ tcpspec fuzz --target reference:synrcvd-ignores-rst --duration 5s --json
/// ```
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Fuzz a target against the spec; minimize and keep each new divergence as a case with its pcap.",
        discussion: """
            Each divergence is classed by RFC 9293 (violates, deviates, choice, unspecified) and names the requirement \
            it breaks; it is kept as a finding only if its minimized case shows it again replayed alone \
            (\(Fuzzer.confirmations) times); one that never does is timing-dependent, kept under CORPUS/timing-dependent/. \
            Cases that wait on a real clock are replayed after the run within half its duration (at least 30 s); \
            the rest are kept as found under CORPUS/unexamined/, not findings. \
            Where the RFC leaves a choice (Spec/choices.toml) the stack's first observed behaviour binds it.
            Exit codes: 0 when no finding violates the RFC (deviations fail too under --strict); 1 otherwise; 2 or \
            more when the run could not be made.
            """
    )

    @OptionGroup var specOptions: SpecOptions
    @OptionGroup var targetOptions: TargetOptions
    @Option(help: "How long to fuzz: a finite, positive duration with a unit (500ms, 60s, 10m, 1h).") var duration: String = "60s"
    @Option(help: "Stop after this many cases instead.") var cases: Int?
    @Option(parsing: .unconditional, help: "The seed, 0 to 2^64-1: the same seed generates the same cases.") var seed: UInt64 = 1
    @Option(help: "Directory where divergences are kept as .case and .pcap files.") var corpus: String = "out/corpus"
    @Option(help: "Connections in flight at once.") var lanes: Int = 64
    @Flag(help: "Keep divergences as found, without minimizing them.") var noMinimize = false
    @Flag(help: "Print a machine-readable summary (JSON) instead of text.") var json = false
    @Flag(help: "Deviations from a SHOULD fail the run (exit 1), as violations do.") var strict = false
    @Flag(inversion: .prefixedNo, help: "Prove input classes unreachable first (values or pairs of values of the classifiers that no TCB and no input give: about 4 s under the linux profile) and count coverage over the rest. Default: on for timed runs of 30 s or more.")
    var proveUnreachable: Bool?

    func validate() throws {
        guard let d = Durations.seconds(duration), d > 0 else {
            throw ValidationError("--duration takes a finite, positive duration with a unit, like 60s, 10m or 500ms (not '\(duration)')")
        }
        if let n = cases, n < 1 { throw ValidationError("--cases is at least 1, not \(n)") }
        guard lanes >= 1 && lanes <= 4096 else { throw ValidationError("--lanes is 1 to 4096") }
    }

    func run() throws {
        let spec = try specOptions.compile()
        // Bad choices fail before anything starts.
        let choices = try specOptions.choices(for: spec)
        try OutputDirectory.prepare(corpus, option: "--corpus")
        RunScope.begin("fuzz")
        let target = try TargetFactory.make(targetOptions.target, options: targetOptions, profile: specOptions.profile, specDir: specOptions.resolvedSpecDir())
        defer { target.close() }
        var config = Fuzzer.Configuration()
        config.seed = seed
        config.duration = Durations.seconds(duration)!
        config.maxCases = cases
        config.lanes = lanes
        config.corpus = corpus
        config.minimize = !noMinimize
        config.targetName = targetOptions.target
        config.maxWait = targetOptions.maxWaitSeconds
        config.testerOptions = targetOptions.testerOffer
        config.choices = choices
        config.proveUniverse = proveUnreachable ?? (cases == nil && (Durations.seconds(duration) ?? 0) >= 30)
        try specOptions.validate(choices)
        let fuzzer = Fuzzer(spec: spec, target: target, configuration: config)
        let tty = isatty(2) != 0 && !json
        let summary = try fuzzer.run { p in
            guard tty else { return }
            let line = String(format: "\r\u{1B}[2Kcells %d/%d · %.0f cases/s · %d divergences · %.1fs", p.cellsCovered, p.cellsTotal, Double(p.cases) / max(p.seconds, 0.001), p.divergences, p.seconds)
            FileHandle.standardError.write(Data(line.utf8))
        }
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        if json {
            print(FuzzReport.json(summary, spec: spec, target: targetOptions.target, seed: seed, settings: target.settings, choices: fuzzer.choiceRecords))
        } else {
            print(FuzzReport.text(summary, spec: spec, target: targetOptions.target, seed: seed, corpus: corpus, choices: fuzzer.choiceRecords))
        }
        // A permitted choice or an unspecified behaviour is reported, never a failure; a deviation only under --strict.
        // A timing-dependent observation (its case never showed it again) is never a finding.
        if summary.findings.contains(where: { $0.signature.verdictClass.fails(strict: strict) }) { throw ExitCode(1) }
    }
}

enum FuzzReport {
    static func text(_ s: FuzzSummary, spec: CompiledSpec, target: String, seed: UInt64, corpus: String, choices: [ChoiceRecord] = []) -> String {
        var out = "fuzz \(target) against profile \(spec.profile), seed \(seed): \(s.cases) cases, \(s.steps) steps in \(String(format: "%.1f", s.seconds)) s "
        out += String(format: "(%.0f cases/s); input classes covered %d of %d", s.casesPerSecond, s.cellsCovered, s.cellsTotal)
            + (s.cellsProven > 0 ? " (\(s.cellsProven) more proven unreachable, left out)" : "") + "; rule chains run \(s.chainsCovered) of \(s.chainsTotal)" + (s.waits > 0 ? "; \(s.waits) waits for timers" : "") + "\n"
        // A class the solver proved unreachable that a connection reached: tcpspec's own mistake, said loudly.
        if s.cellsReachedThoughProven > 0 { out += "tcpspec error: \(s.cellsReachedThoughProven) classes proven unreachable were reached (the solver's encoding and the model disagree)\n" }
        out += s.options.description + "\n"
        if let rules = s.options.rules.records { out += ConformReport.optionLine(rules) + "\n" }
        if s.restarts > 0 {
            // The kinds of failure kept (a failure already in the corpus is not kept again).
            let kinds = Set(s.divergences.compactMap { $0.signature.failureKind.map(String.init) }).sorted()
            out += "the stack failed as a program and was restarted \(s.restarts) times"
                + (kinds.isEmpty ? " (each failure's kind already in the corpus)\n" : " (findings below: \(kinds.joined(separator: ", ")))\n")
        }
        if s.findings.isEmpty {
            out += "no divergences\n"
        } else {
            out += "\(s.findings.count) new \(s.findings.count == 1 ? "divergence" : "divergences"), each minimized and reproduced alone:\n"
            for d in s.findings {
                out += "  - in \(d.stateBefore), on \(d.input): expected \(d.expected); observed \(d.observed) [\(d.steps) steps]\n"
                // What differed, said once: where expected and observed read the same (a window, a state the
                // target reported), this is the only place the difference shows.
                if let m = d.log.last?.mismatches, !m.isEmpty { out += "    differs: \(m.map(\.description).joined(separator: "; "))\n" }
                if let j = d.signature.judgement { out += "    verdict: \(j.description)\n" }
                out += "    rules: \(d.rules.joined(separator: " › "))\n"
                if let c = d.casePath { out += "    case: \(c)\n    pcap: \(d.pcapPath ?? "-")\n" }
            }
        }
        let timing = s.timingDependent
        if !timing.isEmpty {
            out += "\(timing.count) timing-dependent (seen once, shown in none of \(Fuzzer.confirmations) replays of the case alone; not findings):\n"
            for d in timing { out += "  - in \(d.stateBefore), on \(d.input): expected \(d.expected); observed \(d.observed)\n    case: \(d.casePath ?? "-")\n" }
        }
        let unexamined = s.unexamined
        if !unexamined.isEmpty {
            out += "\(unexamined.count) unexamined (cases that wait, not replayed: the budget of \(Durations.text(s.replayBudget)) for replaying them was spent; kept as found, not findings):\n"
            for d in unexamined { out += "  - in \(d.stateBefore), on \(d.input): expected \(d.expected); observed \(d.observed)\n    case: \(d.casePath ?? "-")\n" }
        }
        for c in choices { out += "choice \(c.name): \(c.description)\n" }
        out += "corpus: \(corpus)"
        return out
    }

    static func esc(_ s: String) -> String { TargetDescription.jsonString(s) }

    static func json(_ s: FuzzSummary, spec: CompiledSpec, target: String, seed: UInt64, settings: [(String, String)], choices: [ChoiceRecord] = []) -> String {
        var o = "{\n"
        o += "  \"target\": \(esc(target)),\n  \"profile\": \(esc(spec.profile)),\n  \"seed\": \(seed),\n"
        o += "  \"cases\": \(s.cases),\n  \"steps\": \(s.steps),\n  \"seconds\": \(String(format: "%.3f", s.seconds)),\n"
        o += "  \"cases_per_second\": \(String(format: "%.1f", s.casesPerSecond)),\n"
        o += "  \"cells_covered\": \(s.cellsCovered),\n  \"cells_total\": \(s.cellsTotal),\n  \"cells_proven_unreachable\": \(s.cellsProven),\n"
        o += "  \"cells_reached_though_proven\": \(s.cellsReachedThoughProven),\n  \"chains_covered\": \(s.chainsCovered),\n  \"chains_total\": \(s.chainsTotal),\n  \"restarts\": \(s.restarts),\n"
        o += "  \"options\": {\"offers_drawn\": \(s.options.offers.count), \"target_syns\": \(s.options.synSeen), \"window_scale_agreed\": \(s.options.windowScale), \"timestamps_agreed\": \(s.options.timestamps), \"sack_agreed\": \(s.options.sack), \"wrapping_clocks\": \(s.options.wrappingClocks), "
            + "\"odd_option_lists\": {" + OptionOddity.drawn.map { "\"\($0)\": \(s.options.oddities[$0, default: 0])" }.joined(separator: ", ") + "}},\n"
        o += "  \"option_rules\": [" + (s.options.rules.records ?? []).map { r in "{\"rule\": \(esc(r.rule)), \"requirement\": \(r.requirement.map(esc) ?? "null"), \"clause\": \(esc(r.clause)), \"judged\": \(r.judged), \"broken\": \(r.broken)}" }.joined(separator: ", ") + "],\n"
        o += "  \"choices\": [" + choices.map { c in "{\"name\": \(esc(c.name)), \"bound\": \(c.bound.map { esc($0.rawValue) } ?? "null"), \"chose\": \(esc(c.bound.map { $0 == .taken ? c.taken : c.other } ?? "")), \"first_seen\": \(c.firstSeen.map(esc) ?? "null"), \"consistent\": \(c.consistent), \"inconsistent\": \(c.inconsistent)}" }.joined(separator: ", ") + "],\n"
        o += "  \"settings\": {" + settings.map { "\(esc($0.0)): \(esc($0.1))" }.joined(separator: ", ") + "},\n"
        o += "  \"divergences\": [" + s.divergences.map { d in
            "\n    {\"signature\": \(esc(d.signature.description)), \"state\": \(esc(d.stateBefore.rawValue)), \"input\": \(esc(d.input)), \"expected\": \(esc(d.expected)), \"observed\": \(esc(d.observed)), \"rules\": [\(d.rules.map(esc).joined(separator: ", "))], \"class\": \(esc(d.signature.verdictClass.rawValue)), \"reproduced\": \(d.reproduced), \"found_after_s\": \(String(format: "%.3f", d.foundAfter)), \"replays\": \(d.replays), \"timing_dependent\": \(d.timingDependent), \"examined\": \(d.examined), \"breaks\": [\(d.signature.requirements.map { esc($0.description) }.joined(separator: ", "))], \"differs\": [\((d.log.last?.mismatches ?? []).map { esc($0.description) }.joined(separator: ", "))], \"steps\": \(d.steps), \"case\": \(d.casePath.map(esc) ?? "null"), \"pcap\": \(d.pcapPath.map(esc) ?? "null")}"
        }.joined(separator: ",") + (s.divergences.isEmpty ? "]\n" : "\n  ]\n")
        return o + "}"
    }
}
