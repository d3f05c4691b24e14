import Core
import Foundation

/// tcpspec-bench's command line, read once: the benchmark's name and each flag's value. Anything else is
/// refused before a benchmark starts (a mistyped flag would otherwise run `all` for minutes with defaults).
///
/// ```
/// $ tcpspec-bench fuzz --seconds 120
/// $ tcpspec-bench --help
/// ```
enum BenchArguments {
    static let benchmarks = ["all", "compile", "model", "link", "fuzz", "conform", "exchange", "check", "check-keep", "soak", "faults", "solver"]
    /// Every flag takes a value.
    static let valueFlags = ["--spec-dir", "--seconds", "--connections", "--minutes", "--interval", "--target", "--profile", "--jobs", "--faults"]
    static let numericFlags: Set = ["--seconds", "--connections", "--minutes", "--interval", "--jobs"]

    static let parsed: (what: String, values: [String: String]) = parse(Array(CommandLine.arguments.dropFirst()))

    static func value(_ flag: String) -> String? { parsed.values[flag] }

    static var usage: String {
        "usage: tcpspec-bench [\(benchmarks.joined(separator: "|"))] [--seconds N] [--connections N] [--minutes N] [--interval S] [--target linux|pytcp] [--profile P] [--jobs N] [--faults 04,08] [--spec-dir DIR]"
    }

    static func parse(_ args: [String]) -> (what: String, values: [String: String]) {
        var what: String?
        var values: [String: String] = [:]
        var i = 0
        func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data("tcpspec-bench: \(message)\n\(usage)\n".utf8))
            exit(2)
        }
        while i < args.count {
            let a = args[i]
            if a == "--help" || a == "-h" {
                print(usage)
                exit(0)
            } else if valueFlags.contains(a) {
                guard i + 1 < args.count else { fail("\(a) needs a value") }
                if numericFlags.contains(a), Double(args[i + 1]).map({ $0 > 0 }) != true { fail("\(a) needs a positive number, not '\(args[i + 1])'") }
                values[a] = args[i + 1]
                i += 2
            } else if a.hasPrefix("-") {
                fail("unknown flag '\(a)'")
            } else if benchmarks.contains(a), what == nil {
                what = a
                i += 1
            } else {
                fail(what == nil ? "unknown benchmark '\(a)'" : "unexpected argument '\(a)'")
            }
        }
        return (what ?? "all", values)
    }
}
