import Foundation
import Spec
import Synchronization

/// The repository the tests run from, found from this file's path (Tests/TestSupport/), so that tests run from
/// any working directory; and its spec, compiled once per profile for the whole test run. Every test target
/// that reads the repository's files takes them from here.
public enum Repository {
    /// The repository's root directory.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The repository's Spec/ directory.
    public static let specDirectory: String = root.appendingPathComponent("Spec").path

    /// A file or directory of the repository, by its path from the root ("Corpus/examples").
    public static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// The built `tcpspec` executable: beside the test bundle in the build directory, else .build/debug/tcpspec.
    public static let tcpspec: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("tcpspec").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return url(".build/debug/tcpspec").path
    }()

    /// What a profile that does not compile said.
    public struct CompileFailure: Error, CustomStringConvertible {
        public var description: String
    }

    private static let compiled = Mutex<[String: CompiledSpec]>([:])

    /// A profile of the repository's spec, compiled the first time it is asked for; a profile that does not
    /// compile throws its diagnostics.
    public static func spec(_ profile: String) throws -> CompiledSpec {
        try compiled.withLock { cache in
            if let s = cache[profile] { return s }
            let r = SpecLoader.compile(profile: profile, directory: specDirectory)
            guard let s = r.spec else {
                throw CompileFailure(description: "profile \(profile) does not compile:\n" + r.diagnostics.map(\.rendered).joined(separator: "\n"))
            }
            cache[profile] = s
            return s
        }
    }
}
