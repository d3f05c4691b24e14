import Core
import Foundation
import Link

/// Runs Graphviz `dot` on a graph: the one place the CLI starts it.
enum Graphviz {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func render(_ dot: String, format: String) throws -> Data {
        guard let exe = ["/usr/bin/dot", "/usr/local/bin/dot"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Failure(description: "Graphviz 'dot' is not installed (Debian: apt-get install graphviz); use --format dot for the source")
        }
        let run = try Sys.runProgram(exe, arguments: ["-T\(format)"], input: Data(dot.utf8))
        guard run.status == 0 else {
            throw Failure(description: "dot failed (exit \(run.status)): \(String(decoding: run.errors, as: UTF8.self))")
        }
        return run.output
    }
}
