import Cases
import Checker
import Foundation
import TestSupport
import Testing
import Targets

/// The cases of a repository folder, each run on a stack started for it (as `tcpspec run` does: every case uses
/// the same ports), for the suites of each userspace stack.
enum CaseFolder {
    /// The `.case` files of `folder` (e.g. "Corpus/examples"), by name.
    static func names(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Repository.url(folder).path).filter { $0.hasSuffix(".case") }.sorted()
    }

    /// Runs `folder/name` against a fresh target of `description`; `check` sees the target before the run.
    static func run(_ folder: String, _ name: String, on description: TargetDescription,
                    check: (AgentTarget) -> Void = { _ in }) throws -> CaseResult {
        let path = Repository.url(folder).appendingPathComponent(name).path
        let (file, diags) = CaseParser.parse(path: path, text: try String(contentsOfFile: path, encoding: .utf8))
        #expect(diags.isEmpty, "\(name): \(diags.map(\.rendered))")
        let t = try AgentTarget(description)
        defer { t.close() }
        check(t)
        return CaseRunner(target: t, file: file).run()
    }
}
