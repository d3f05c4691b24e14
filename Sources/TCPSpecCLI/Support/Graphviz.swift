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
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["-T\(format)"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = errors
        try p.run()
        RunRegistry.track(process: p.processIdentifier)
        defer { RunRegistry.untrack(process: p.processIdentifier) }
        // Write on another thread: dot may fill its output pipe before it has read all its input.
        let writer = Thread {
            input.fileHandleForWriting.write(Data(dot.utf8))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure(description: "dot failed (exit \(p.terminationStatus)): \(String(decoding: err, as: UTF8.self))")
        }
        return data
    }
}
