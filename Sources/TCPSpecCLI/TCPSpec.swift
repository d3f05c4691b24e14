import Core
import ArgumentParser

/// `tcpspec`: a TCP-state specification checker and fuzzer.
///
/// ```
/// $ tcpspec spec check --profile rfc9293
/// $ tcpspec spec explain ESTABLISHED "RST seq=ahead"
/// ```
struct TCPSpec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcpspec",
        abstract: "A TCP-state specification checker and fuzzer.",
        discussion: "The spec in Spec/ (RFC 793 / RFC 9293 event processing) is compiled into an executable model of a TCP endpoint.",
        subcommands: [FuzzCommand.self, ConformCommand.self, DiffCommand.self, CheckCommand.self, MergeCommand.self, ReplayCommand.self, ExportCommand.self, RunCommand.self, SpecCommand.self, DoctorCommand.self]
    )
}
