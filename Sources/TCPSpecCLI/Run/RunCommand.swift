import Core
import ArgumentParser
import Cases
import Checker
import Foundation
import Link
import Targets

/// Runs case files against a target and prints expected beside observed, by case line.
///
/// ```
/// $ tcpspec run Corpus/examples/handshake-passive.case --target linux --pcap out/handshake.pcap
/// $ tcpspec run Corpus/examples --ip 6
/// $ tcpspec run Corpus/pytcp/examples --target pytcp
/// ```
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run case files against a target; exit non-zero on any divergence.",
        discussion: "Each case runs on a fresh target (new namespaces). The case format is documented in docs/case-format.md."
    )

    @Argument(help: "Case files, or directories of .case files.") var cases: [String]
    @OptionGroup var target: TargetOptions
    @OptionGroup var specOptions: SpecOptions
    @Option(help: "Write the exchange to this pcap (one case), or into this directory (several).") var pcap: String?
    @Flag(help: "Print only the summary line of passing cases.") var quiet = false

    func run() throws {
        let files = try CaseFiles.expand(cases)
        if target.target == "linux" { TargetOptions.reexecInUserNamespaceIfNeeded() }
        RunScope.begin("run")
        var failed = 0
        for path in files {
            let (file, _) = try CaseFiles.load(path)
            var extra: [String: String] = [:]
            for (k, v) in file.options where k.hasPrefix("sysctl ") { extra[String(k.dropFirst(7))] = v }
            var t = target
            if let ip = file.options["ip"].flatMap(Int.init) { t.ip = ip }
            // The application's socket settings the case was found with (it waits on their timers).
            let recorded = SocketSettings.fromCase(file.options)
            let described = t.target != "linux" && !t.target.hasPrefix("reference")
            if !described {
                if let u = file.options["user-timeout"] { t.userTimeout = u }
                if let k = file.options["keepalive"] { t.keepalive = k }
                // A case found with delayed ACKs on expects them (its ACKs may come up to the bound late).
                if let d = file.options["delayed-acks"] { t.delayedAcks = d == "on" }
                do {
                    try t.validate()
                } catch {
                    printError("tcpspec: \(path): the case's options cannot be set on the \(t.target) target: \(error)")
                    throw ExitCode(2)
                }
            }
            // A fresh target for each case: Linux with the case's sysctls, others as their descriptions say.
            let caseTarget: Target = t.target == "linux" ? try t.start(extraSysctls: extra)
                : try TargetFactory.make(t.target, options: t, profile: specOptions.profile, specDir: specOptions.resolvedSpecDir(),
                                         referenceUserTimeout: recorded.userTimeout ?? nil)
            // A userspace stack's are its description's: a case found with others would judge other timers.
            let has = caseTarget.socketSettings
            if (recorded.userTimeout.map { $0 != has.userTimeout } ?? false) || (recorded.keepalive.map { $0 != has.keepalive } ?? false) {
                caseTarget.close()
                let want = SocketSettings(userTimeout: recorded.userTimeout ?? has.userTimeout, keepalive: recorded.keepalive ?? has.keepalive)
                func text(_ s: SocketSettings) -> String { s.caseOptions.map { "\($0.key) \($0.value)" }.joined(separator: ", ") }
                printError("tcpspec: \(path): the case was found with \(text(want)); the \(t.target) target runs with \(text(has))"
                           + (described ? " (its description's [application] sets them)" : ""))
                throw ExitCode(2)
            }
            let runner = CaseRunner(target: caseTarget, file: file)
            var result = runner.run()
            let pcapPath = pcap.map { files.count == 1 && !$0.hasSuffix("/") ? $0 : ($0 as NSString).appendingPathComponent(((path as NSString).lastPathComponent as NSString).deletingPathExtension + ".pcap") }
                ?? "out/run/" + ((path as NSString).lastPathComponent as NSString).deletingPathExtension + ".pcap"
            do {
                try PcapWriter.write(runner.frames, linkType: caseTarget.link.linkType, to: pcapPath)
                result.pcapPath = pcapPath
            } catch {
                printError("tcpspec: cannot write pcap '\(pcapPath)': \(error)")
            }
            caseTarget.close()
            if !result.passed || !quiet { print(CaseReport.text(result, color: isatty(1) != 0), terminator: "") }
            if !result.passed { failed += 1 }
        }
        if files.count > 1 { print("\(files.count) cases, \(failed) with divergences") }
        if failed > 0 { throw ExitCode(1) }
    }
}

enum CaseFiles {
    /// Reads and parses a case, or exits 2 after printing every error with file:line:col.
    static func load(_ path: String) throws -> (CaseFile, String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            printError("tcpspec: cannot read '\(path)'")
            throw ExitCode(2)
        }
        let (file, diags) = CaseParser.parse(path: path, text: text)
        if !diags.isEmpty {
            for d in diags { printError(d.rendered) }
            printError("tcpspec: \(path) has \(diags.count) error(s)")
            throw ExitCode(2)
        }
        return (file, text)
    }

    /// The case files named, a directory standing for its `.case` files (and, `recursive`, those of its
    /// subdirectories), in name order.
    static func expand(_ paths: [String], recursive: Bool = false) throws -> [String] {
        var out: [String] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                printError("tcpspec: no such case file or directory '\(p)'")
                throw ExitCode(2)
            }
            if isDir.boolValue {
                let names = (try? recursive ? FileManager.default.subpathsOfDirectory(atPath: p) : FileManager.default.contentsOfDirectory(atPath: p)) ?? []
                out += names.filter { $0.hasSuffix(".case") }.sorted().map { (p as NSString).appendingPathComponent($0) }
            } else {
                out.append(p)
            }
        }
        if out.isEmpty {
            printError("tcpspec: no .case files in \(paths.joined(separator: " "))")
            throw ExitCode(2)
        }
        return out
    }
}
