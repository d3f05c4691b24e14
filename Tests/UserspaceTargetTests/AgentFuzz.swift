import Foundation
@testable import Fuzzer
import TestSupport
import Targets

/// A seeded fuzz run against a userspace stack started from `description`, keeping its findings in `corpus`
/// (the caller removes it), for the suites of each userspace stack.
enum AgentFuzz {
    static func run(_ description: TargetDescription, name: String, seed: UInt64, seconds: Double, cases: Int, lanes: Int,
                    corpus: String) throws -> FuzzSummary {
        let t = try AgentTarget(description)
        defer { t.close() }
        var config = Fuzzer.Configuration()
        config.seed = seed
        config.duration = seconds
        config.maxCases = cases
        config.lanes = lanes
        config.corpus = corpus
        config.targetName = name
        return try Fuzzer(spec: try Repository.spec("rfc9293"), target: t, configuration: config).run()
    }
}
