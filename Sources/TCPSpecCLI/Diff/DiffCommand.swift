import Core
import ArgumentParser
import Foundation
import Fuzzer
import Spec
import Targets

/// Differential mode: the same generated cases against two stacks; every behaviour they do not share,
/// whatever the spec says, minimized and kept as a case (expectations: the first target's behaviour) with a
/// pcap of each.
///
/// ```
/// $ tcpspec diff --target linux --target pytcp --duration 60s --out out/diff
/// $ tcpspec replay --target pytcp out/diff/000-established-call-close.case
/// ```
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Run the same generated cases against two targets; minimize and keep each behaviour they do not share."
    )

    @OptionGroup var specOptions: SpecOptions
    @Option(name: .customLong("target"), help: "A target (twice): linux, reference, reference:FAULT, a Targets/NAME.toml name or a description path.")
    var targets: [String] = []
    @Option(help: "IP version of the connections: 4 or 6.") var ip: Int = 4
    @Option(help: "How long to generate cases: a finite, positive duration with a unit (500ms, 60s, 10m).") var duration: String = "30s"
    @Option(help: "Stop after this many cases instead.") var cases: Int?
    @Option(parsing: .unconditional, help: "The seed, 0 to 2^64-1: the same seed generates the same cases.") var seed: UInt64 = 1
    @Option(help: "Connections in flight at once while generating (on the first target).") var lanes: Int = 16
    @Option(help: "Directory for the difference cases and pcaps.") var out: String = "out/diff"
    @Flag(help: "Print a machine-readable summary (JSON).") var json = false
    @OptionGroup var safety: SafetyOptions

    func validate() throws {
        guard targets.count == 2 else { throw ValidationError("diff takes exactly two --target options, e.g. --target linux --target pytcp") }
        guard targets[0] != targets[1] else { throw ValidationError("diff needs two different targets") }
        guard let d = Durations.seconds(duration), d > 0 else {
            throw ValidationError("--duration takes a finite, positive duration with a unit, like 60s, 10m or 500ms (not '\(duration)')")
        }
        if let n = cases, n < 1 { throw ValidationError("--cases is at least 1, not \(n)") }
        guard ip == 4 || ip == 6 else { throw ValidationError("--ip is 4 or 6") }
        guard lanes >= 1 && lanes <= 4096 else { throw ValidationError("--lanes is 1 to 4096") }
    }

    func run() throws {
        let spec = try specOptions.compile()
        var options = try TargetOptions.parse(["--ip", "\(ip)"])
        options.safety = safety
        try OutputDirectory.prepare(out, option: "--out")
        RunScope.begin("diff")
        let a = try TargetFactory.make(targets[0], options: options, profile: specOptions.profile, specDir: specOptions.resolvedSpecDir())
        defer { a.close() }
        let b = try TargetFactory.make(targets[1], options: options, profile: specOptions.profile, specDir: specOptions.resolvedSpecDir())
        defer { b.close() }
        var config = Fuzzer.Configuration()
        config.seed = seed
        config.lanes = lanes
        config.targetName = targets[0]
        config.testerOptions = options.testerOffer
        let differ = Differ(spec: spec, a: a, b: b, names: (targets[0], targets[1]), configuration: config, out: out)
        let tty = isatty(2) != 0 && !json
        let s = try differ.run(duration: Durations.seconds(duration)!, maxCases: cases) { p in
            guard tty else { return }
            FileHandle.standardError.write(Data(String(format: "\r\u{1B}[2K%d cases · %.0f cases/s · %d differences · %.1fs", p.cases, p.casesPerSecond, p.differences.count, p.seconds).utf8))
        }
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        if json {
            let items = s.differences.map { d in
                "{\"signature\": \(FuzzReport.esc(d.signature.description)), \"state\": \(FuzzReport.esc(d.stateBefore.rawValue)), \"input\": \(FuzzReport.esc(d.input)), \"a\": \(FuzzReport.esc(d.a)), \"b\": \(FuzzReport.esc(d.b)), \"steps\": \(d.steps), \"case\": \(d.casePath.map(FuzzReport.esc) ?? "null"), \"pcaps\": [\(d.pcapPaths.map(FuzzReport.esc).joined(separator: ", "))]}"
            }
            print("{\"a\": \(FuzzReport.esc(targets[0])), \"b\": \(FuzzReport.esc(targets[1])), \"profile\": \(FuzzReport.esc(spec.profile)), \"seed\": \(seed), \"cases\": \(s.cases), \"seconds\": \(String(format: "%.3f", s.seconds)), \"differences\": [\(items.joined(separator: ", "))]}")
        } else {
            print("diff \(targets[0]) vs \(targets[1]) (cases generated from profile \(spec.profile), seed \(seed)): \(s.cases) cases in \(String(format: "%.1f", s.seconds)) s (\(String(format: "%.0f", s.casesPerSecond)) cases/s)")
            if s.differences.isEmpty { print("no differences") }
            for d in s.differences {
                print("  - in \(d.stateBefore), on \(d.input) [\(d.steps) steps]:\n      \(targets[0]): \(d.a)\n      \(targets[1]): \(d.b)")
                if let c = d.casePath { print("      case: \(c)\n      pcaps: \(d.pcapPaths.joined(separator: ", "))") }
            }
            print("out: \(out)")
        }
        if !s.differences.isEmpty { throw ExitCode(1) }
    }
}
