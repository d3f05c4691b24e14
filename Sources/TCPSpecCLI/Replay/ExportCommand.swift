import Core
import ArgumentParser
import Cases
import Foundation

/// Writes cases in another notation. packetdrill: the Linux kernel's TCP selftests' language.
///
/// ```
/// $ tcpspec export --format packetdrill Corpus/linux/*.case --output-dir out/pkt
/// ```
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write cases as packetdrill scripts.")

    enum Format: String, ExpressibleByArgument { case packetdrill }

    @Option(help: "The notation to write: packetdrill.") var format: Format = .packetdrill
    @Argument(help: "Case files, or directories of .case files.") var cases: [String]
    @Option(help: "Write NAME.pkt files here instead of printing them.") var outputDir: String?

    func run() throws {
        for path in try CaseFiles.expand(cases) {
            let (file, text) = try CaseFiles.load(path)
            let script = PacketdrillExport.script(file, originalText: text)
            if let dir = outputDir {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let out = (dir as NSString).appendingPathComponent(((path as NSString).lastPathComponent as NSString).deletingPathExtension + ".pkt")
                try script.write(toFile: out, atomically: true, encoding: .utf8)
                print(out)
            } else {
                print(script)
            }
        }
    }
}
