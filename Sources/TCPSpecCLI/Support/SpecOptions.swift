import Core
import ArgumentParser
import Foundation
import Spec

/// Options shared by every command that compiles a spec.
struct SpecOptions: ParsableArguments {
    @Option(name: .long, help: "The profile to compile: rfc793, rfc9293, linux, or any profile in the spec directory.")
    var profile: String = "rfc9293"

    @Option(name: .customLong("spec-dir"), help: "Directory of .tcpspec files (default: ./Spec, $TCPSPEC_SPEC_DIR, or the Spec/ beside the executable's package).")
    var specDir: String?

    /// Finds the spec directory: explicit flag, environment, working directory, then upwards from the executable.
    func resolvedSpecDir() -> String {
        if let specDir { return specDir }
        if let env = ProcessInfo.processInfo.environment["TCPSPEC_SPEC_DIR"], !env.isEmpty { return env }
        let fm = FileManager.default
        if fm.fileExists(atPath: "Spec/rfc793.tcpspec") { return "Spec" }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("Spec")
            if fm.fileExists(atPath: candidate.appendingPathComponent("rfc793.tcpspec").path) { return candidate.path }
            dir = dir.deletingLastPathComponent()
        }
        return "Spec"
    }

    /// Compiles the profile (or another one of the same spec directory) or exits non-zero after printing every
    /// diagnostic.
    func compile(profile: String? = nil) throws -> CompiledSpec {
        let profile = profile ?? self.profile
        let result = SpecLoader.compile(profile: profile, directory: resolvedSpecDir())
        for d in result.diagnostics { printError(d.rendered) }
        guard let spec = result.spec else {
            printError("tcpspec: profile '\(profile)' has \(result.diagnostics.count) error(s)")
            throw ExitCode(1)
        }
        return spec
    }

    /// The choices RFC 9293 leaves open under the compiled profile (Spec/choices.toml), their alternatives
    /// compiling in the background; a bad catalog is reported where it is and exits 1.
    func choices(for spec: CompiledSpec) throws -> ChoiceSet {
        do {
            return try ChoiceSet.load(for: spec, directory: resolvedSpecDir())
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
    }

    /// Waits for the alternatives (compiled while the target started) and exits 1 on one that does not fit.
    func validate(_ choices: ChoiceSet) throws {
        do {
            try choices.validate()
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
    }
}

func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
