import Core
import ArgumentParser
import Foundation
import Report
import Spec
import Fuzzer

/// Prints the compiled state × input-class matrix as Markdown.
///
/// ```
/// $ tcpspec spec table --profile rfc9293 > table.md
/// ```
struct SpecTableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "table", abstract: "Print the compiled state × input-class matrix in Markdown, each class naming its rules.")

    @OptionGroup var options: SpecOptions

    func run() throws {
        print(SpecTable.markdown(try options.compile()), terminator: "")
    }
}

/// Draws the state diagram the rules imply, as DOT or (through Graphviz) SVG.
///
/// ```
/// $ tcpspec spec graph --profile linux --format svg > linux.svg
/// ```
struct SpecGraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "graph", abstract: "Draw the state diagram (dot, or svg through Graphviz).")

    enum Format: String, ExpressibleByArgument, CaseIterable { case dot, svg }

    @OptionGroup var options: SpecOptions
    @Option(help: "dot or svg (svg runs Graphviz 'dot').") var format: Format = .dot
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?

    func run() throws {
        let dot = StateGraph.dot(try options.compile())
        let data: Data
        switch format {
        case .dot: data = Data(dot.utf8)
        case .svg: data = try Graphviz.render(dot, format: "svg")
        }
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: data) else {
                printError("tcpspec: cannot write '\(output)'")
                throw ExitCode(1)
            }
        } else {
            FileHandle.standardOutput.write(data)
        }
    }
}

/// Shows the chain of rules, with citations, that decides an input in a state.
///
/// ```
/// $ tcpspec spec explain ESTABLISHED "RST seq=ahead" --profile rfc9293
/// $ tcpspec spec explain CLOSE-WAIT CLOSE
/// ```
struct SpecExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show the rule chain, with citations, for an input in a state.",
        discussion: "INPUT is an event (OPEN-ACTIVE, SEND, CLOSE, TIME-WAIT-TIMEOUT, ...) or the SYN/ACK/FIN/RST bits of a segment (SYN,ACK; '-' for none), optionally followed by CLASSIFIER=VALUE[,VALUE] filters such as seq=exact ack=new,dup."
    )

    @OptionGroup var options: SpecOptions
    @Argument(help: "A state name, e.g. ESTABLISHED.") var state: String
    @Argument(help: "The input, e.g. \"SYN,ACK seq=exact\" or CLOSE.") var input: String

    func run() throws {
        let spec = try options.compile()
        guard let s = spec.stateIndex(named: state.uppercased()) else {
            printError("tcpspec: unknown state '\(state)'; states are \(spec.states.map(\.name).joined(separator: ", "))")
            throw ExitCode(2)
        }
        do {
            print(Explain.text(spec, state: s, query: try Explain.parse(input, spec: spec)), terminator: "")
        } catch let e as Explain.QueryError {
            printError("tcpspec: \(e)")
            throw ExitCode(2)
        }
    }
}

/// RFC 9293 Appendix B, requirement by requirement: the rules that implement each, the conformance tests that
/// exercise it (and, given a conform report, how they came out), or why it is not judged on the wire. Exits 1
/// when a requirement is neither implemented nor explained, or is both.
///
/// ```
/// $ tcpspec spec requirements --profile rfc9293
/// $ tcpspec spec requirements --profile linux --report out/conform/report.json --json > requirements.json
/// ```
struct SpecRequirementsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requirements",
        abstract: "List every RFC 9293 requirement (MUST/SHLD/MAY) with its rules and tests, or why it is not judged.",
        discussion: "Exit codes: 0 when every requirement is implemented by a rule or explained in Spec/requirements.toml; 1 when one is unaccounted or both cited and marked unjudged; 2 on bad input."
    )

    @OptionGroup var options: SpecOptions
    @Flag(help: "Print JSON instead of text.") var json = false
    @Option(help: "A conform report.json to join: each requirement's tests with their verdicts and classes.") var report: String?

    func run() throws {
        let dir = options.resolvedSpecDir()
        let spec = try options.compile()
        let catalog: RequirementCatalog
        do { catalog = try RequirementCatalog.load(directory: dir) } catch {
            printError("tcpspec: \(error.description)")
            throw ExitCode(2)
        }
        var conform: ConformReport?
        if let report {
            guard let data = FileManager.default.contents(atPath: report) else {
                printError("tcpspec: cannot read '\(report)'")
                throw ExitCode(2)
            }
            do { conform = try JSONDecoder().decode(ConformReport.self, from: data) } catch {
                printError("tcpspec: \(report): not a tcpspec conform report (\(error))")
                throw ExitCode(2)
            }
            if conform?.profile != spec.profile {
                printError("tcpspec: \(report) was run against profile \(conform!.profile), not \(spec.profile): give --profile \(conform!.profile)")
                throw ExitCode(2)
            }
        }
        let (asts, _) = SpecLoader.loadDirectory(dir)
        let tests = ConformSuite.build(spec).map { spec.rules[$0.rule].id }
        let set = try options.choices(for: spec)
        try options.validate(set)
        let coverage = RequirementCoverage.build(catalog: catalog, spec: spec, tests: tests, cited: RequirementCoverage.citations(in: asts), report: conform,
                                                 choices: set.choices.compactMap { c in c.other.map { (c.choice.name, $0) } })
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            FileHandle.standardOutput.write(try enc.encode(coverage) + Data("\n".utf8))
        } else {
            print(coverage.text, terminator: "")
        }
        if coverage.count(.unaccounted) + coverage.count(.conflict) > 0 { throw ExitCode(1) }
    }
}
