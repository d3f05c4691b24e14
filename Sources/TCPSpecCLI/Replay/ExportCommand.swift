import Core
import ArgumentParser
import Cases
import Foundation
import Link

/// Writes cases in another notation. packetdrill: the Linux kernel's TCP selftests' language.
///
/// ```
/// $ tcpspec export --format packetdrill Corpus/linux/*.case --output-dir out/pkt
/// $ tcpspec export Corpus/linux --output-dir out/pkt      # every .case under the folder, subfolders too
/// ```
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write cases as packetdrill scripts.")

    enum Format: String, ExpressibleByArgument { case packetdrill }

    @Option(help: "The notation to write: packetdrill.") var format: Format = .packetdrill
    @Argument(help: "Case files, or directories of .case files (searched with their subdirectories).") var cases: [String]
    @Option(help: "Write NAME.pkt files here instead of printing them.") var outputDir: String?

    func run() throws {
        if let dir = outputDir { try OutputDirectory.prepare(dir, option: "--output-dir") }
        for path in try CaseFiles.expand(cases, recursive: true) {
            let (file, text) = try CaseFiles.load(path)
            // The settings tcpspec's Linux target runs each case with, the case's own over the defaults.
            var settings = Topology.defaultSysctls
            for (k, v) in file.options.sorted(by: { $0.key < $1.key }) where k.hasPrefix("sysctl ") {
                let key = String(k.dropFirst(7))
                if let i = settings.firstIndex(where: { $0.0 == key }) { settings[i].1 = v } else { settings.append((key, v)) }
            }
            // The application's socket settings: the case's (`option user-timeout`, `option keepalive`) over the defaults.
            let recorded = SocketSettings.fromCase(file.options)
            let userTimeout = recorded.userTimeout.map { $0.map { Int(($0 * 1000).rounded()) } } ?? Topology.Configuration().userTimeoutMilliseconds.map(Int.init)
            let script = PacketdrillExport.script(file, originalText: text, settings: settings, userTimeout: userTimeout,
                                                  keepalive: recorded.keepalive ?? nil)
            if let dir = outputDir {
                // A case found under a directory argument keeps its place below it (two stacks' cases may share a name).
                let out = (dir as NSString).appendingPathComponent((relative(path) as NSString).deletingPathExtension + ".pkt")
                try FileManager.default.createDirectory(atPath: (out as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try script.write(toFile: out, atomically: true, encoding: .utf8)
                print(out)
            } else {
                print(script)
            }
        }
    }

    /// `path` below the directory argument it was found in, else its file name.
    func relative(_ path: String) -> String {
        for c in cases {
            let d = c.hasSuffix("/") ? c : c + "/"
            if path.hasPrefix(d) { return String(path.dropFirst(d.count)) }
        }
        return (path as NSString).lastPathComponent
    }
}
