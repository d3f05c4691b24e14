import Core
import ArgumentParser
import Cases
import Checker
import Foundation
import Link
import Targets

/// Re-runs corpus cases against a target: each passes (the target now does what the case expects), still
/// diverges, or is an error. Exit 0 when every case passes, 1 when one still diverges, 2 on errors.
///
/// ```
/// $ tcpspec replay Corpus/linux --target linux
/// $ tcpspec replay out/corpus/003-listen-ack.case --target reference:listen-ack-no-rst
/// ```
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "replay", abstract: "Re-run cases: pass / still diverges / error, with an exit code for CI.")

    @Argument(help: "Case files, or directories of .case files.") var cases: [String]
    @OptionGroup var specOptions: SpecOptions
    @OptionGroup var targetOptions: TargetOptions
    @Flag(help: "Print each case's steps, not only its verdict.") var verbose = false

    func run() throws {
        let files = try CaseFiles.expand(cases)
        RunScope.begin("replay")
        var pass = 0, diverge = 0, errors = 0
        for path in files {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                print("error          \(path): cannot read")
                errors += 1
                continue
            }
            let (file, diags) = CaseParser.parse(path: path, text: text)
            if !diags.isEmpty {
                print("error          \(path): \(diags.count) syntax error(s)")
                for d in diags { printError(d.rendered) }
                errors += 1
                continue
            }
            let target = try TargetFactory.make(targetOptions.target, options: targetOptions, profile: specOptions.profile, specDir: specOptions.resolvedSpecDir())
            let result = CaseRunner(target: target, file: file).run()
            target.close()
            if result.steps.contains(where: { if case .error = $0.verdict { true } else { false } }) {
                errors += 1
                print("error          \(path)")
            } else if result.passed {
                pass += 1
                print("pass           \(path)")
            } else {
                diverge += 1
                let first = result.steps.first(where: \.failed)
                print("still diverges \(path) (line \(first?.line ?? 0): \(first.map { reasons($0) } ?? ""))")
            }
            if verbose || (!result.passed && isatty(1) != 0) { print(CaseReport.text(result, color: isatty(1) != 0), terminator: "") }
        }
        print("\(files.count) cases: \(pass) pass, \(diverge) still diverge, \(errors) errors")
        if errors > 0 { throw ExitCode(2) }
        if diverge > 0 { throw ExitCode(1) }
    }

    func reasons(_ s: StepResult) -> String {
        switch s.verdict {
        case .mismatch(let r): r.joined(separator: "; ")
        case .error(let e): e
        default: ""
        }
    }
}
