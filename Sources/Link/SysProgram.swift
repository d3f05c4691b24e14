import Core
import Foundation

/// What a program said and how it ended (`Sys.runProgram`).
public struct ProgramRun: Sendable {
    /// The exit status (or the signal's number, when a signal ended it).
    public var status: Int32
    /// Its standard output, and its standard error too when they were merged.
    public var output: Data
    /// Its standard error, when not merged into `output`.
    public var errors: Data
}

extension Sys {
    /// Runs a helper program to its end (an installer, Graphviz, a probe of `unshare`): the one place tcpspec
    /// starts a program with Foundation's `Process` (agents, which must be born in a namespace and die with
    /// it, start through `spawn`). The program is recorded in the run's registry while it runs, so that the
    /// sweep of a killed run ends it. Throws what `Process.run` throws when it cannot start.
    ///
    /// - Parameters:
    ///   - input: written to its standard input, which is then closed (none: it reads nothing).
    ///   - mergeErrors: its standard error goes into `output`, interleaved as written.
    public static func runProgram(_ path: String, arguments: [String], directory: String? = nil, input: Data? = nil,
                                  mergeErrors: Bool = false) throws -> ProgramRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let output = Pipe(), errors = mergeErrors ? output : Pipe()
        let stdin = input.map { _ in Pipe() }
        p.standardOutput = output
        p.standardError = errors
        if let stdin { p.standardInput = stdin }
        try p.run()
        RunRegistry.track(process: p.processIdentifier)
        // Input written and standard error read on threads of their own: a program may fill one pipe before
        // it has read all its input or written all of another.
        let done = DispatchGroup()
        if let writer = stdin?.fileHandleForWriting, let input {
            DispatchQueue.global().async(group: done) {
                writer.write(input)
                try? writer.close()
            }
        }
        let said = Box(Data())
        if !mergeErrors {
            let reader = errors.fileHandleForReading
            DispatchQueue.global().async(group: done) { said.value = reader.readDataToEndOfFile() }
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        p.waitUntilExit()
        RunRegistry.untrack(process: p.processIdentifier)
        return ProgramRun(status: p.terminationStatus, output: out, errors: said.value)
    }
}
