import ArgumentParser
import Foundation
import Targets

/// Makes the target a command names: `linux`, `reference`, or `reference:FAULT` (a seeded fault).
enum TargetFactory {
    static func make(_ name: String, options: TargetOptions, profile: String, specDir: String) throws -> Target {
        if name == "linux" {
            TargetOptions.reexecInUserNamespaceIfNeeded()
            return try options.start()
        }
        if name == "reference" || name.hasPrefix("reference:") {
            var fault: ReferenceFault?
            if name.hasPrefix("reference:") {
                let f = String(name.dropFirst("reference:".count))
                guard let found = ReferenceFault.named(f) else {
                    printError("tcpspec: unknown fault '\(f)'; faults: \(ReferenceFault.all.map(\.name).joined(separator: ", "))")
                    throw ExitCode(2)
                }
                fault = found
            }
            do {
                return try ReferenceTarget(profile: profile, specDirectory: specDir, fault: fault)
            } catch {
                printError("tcpspec: the reference target did not start: \(error)")
                throw ExitCode(3)
            }
        }
        printError("tcpspec: unknown target '\(name)'; targets: linux, reference, reference:FAULT")
        throw ExitCode(2)
    }
}
