import Core
import ArgumentParser
import Foundation
import Spec

/// `tcpspec spec`: check, tabulate, draw and explain the executable spec.
struct SpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spec",
        abstract: "Check, tabulate, draw and explain the TCP spec.",
        subcommands: [SpecCheck.self, SpecTableCommand.self, SpecGraphCommand.self, SpecExplainCommand.self, SpecRequirementsCommand.self]
    )
}

/// Compiles a profile and runs every static check.
///
/// ```
/// $ tcpspec spec check --profile rfc793
/// Spec/ profile rfc793: 11 states, 96 rules, 5 classifiers, 2361 input classes — all checks pass
/// ```
struct SpecCheck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Compile a profile and run the static checks; exit 0 only when all pass.")

    @OptionGroup var options: SpecOptions

    func run() throws {
        let spec = try options.compile()
        // The profile's choices: each other alternative must compile, extend it and replace only the choice's rules.
        let choices = try options.choices(for: spec)
        try options.validate(choices)
        let feasible = spec.tables.reduce(0) { $0 + $1.cellChains.filter { $0 >= 0 }.count }
        print("profile \(spec.profile) (\(spec.lineage.joined(separator: " → "))): \(spec.states.count) states, \(spec.rules.count) rules, \(spec.classifiers.count) classifiers, \(feasible) input classes\(choices.choices.isEmpty ? "" : ", \(choices.choices.count) choices") — all checks pass")
    }
}
