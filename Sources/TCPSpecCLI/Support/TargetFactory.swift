import Core
import ArgumentParser
import Foundation
import Targets

/// Makes the target a command names: `linux`, `reference`, `reference:FAULT` (a seeded fault), or
/// `reference@PROFILE` (the model of another profile as the stack: e.g. the other alternative of a choice).
enum TargetFactory {
    /// `referenceUserTimeout`: the application's R2 for the reference target (a case's `option user-timeout`).
    static func make(_ name: String, options: TargetOptions, profile: String, specDir: String, referenceUserTimeout: Double? = nil) throws -> Target {
        options.safety.apply()
        if name == "linux" {
            TargetOptions.reexecInUserNamespaceIfNeeded()
            return try options.start()
        }
        if name.hasPrefix("reference@") {
            let other = String(name.dropFirst("reference@".count))
            do {
                return try ReferenceTarget(profile: other, specDirectory: specDir, fault: nil)
            } catch {
                printError("tcpspec: the reference target of profile '\(other)' did not start: \(error)")
                throw ExitCode(3)
            }
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
                return try ReferenceTarget(profile: profile, specDirectory: specDir, fault: fault, userTimeout: referenceUserTimeout, keepalive: options.keepaliveSetting,
                                           ackDelay: options.delayedAcks ? ReferenceTarget.defaultAckDelay : nil)
            } catch {
                printError("tcpspec: the reference target did not start: \(error)")
                throw ExitCode(3)
            }
        }
        guard !options.delayedAcks else {
            printError("tcpspec: --delayed-acks is for the linux and reference targets; a userspace stack's delayed ACKs are its own (its description's settings), and the agent protocol does not yet say whether they are on")
            throw ExitCode(2)
        }
        guard options.keepalive == "off" else {
            printError("tcpspec: --keepalive is for the linux and reference targets; a userspace stack's keep-alives are its description's [application] keepalive_idle_ms, keepalive_interval_ms and keepalive_probes (docs/agent-protocol.md)")
            throw ExitCode(2)
        }
        return try userspace(name, safety: options.safety)
    }

    /// The checkout this binary was built from (for `Targets/` when run from elsewhere).
    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The described targets in ./Targets and the checkout's Targets.
    static func describedTargets() -> [String] {
        var names: Set<String> = []
        for dir in [FileManager.default.currentDirectoryPath, checkout] {
            let d = URL(fileURLWithPath: dir).appendingPathComponent("Targets").path
            for f in (try? FileManager.default.contentsOfDirectory(atPath: d)) ?? [] where f.hasSuffix(".toml") { names.insert(String(f.dropLast(5))) }
        }
        return names.sorted()
    }

    /// A userspace stack from its description (docs/agent-protocol.md): `Targets/NAME.toml` or a path.
    static func userspace(_ name: String, safety: SafetyOptions) throws -> Target {
        guard let path = TargetDescription.locate(name, checkout: checkout) else {
            let known = (["linux", "reference", "reference:FAULT", "reference@PROFILE"] + describedTargets()).joined(separator: ", ")
            printError("tcpspec: unknown target '\(name)': no Targets/\(name).toml here or in \(checkout); targets: \(known), or a path to a target description")
            throw ExitCode(2)
        }
        let description: TargetDescription
        do {
            description = try TargetDescription.load(path)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        // What the description asks that the user has not allowed, refused before anything is made.
        let refused = description.safetyErrors(allowedInterfaces: Set(safety.foreignInterfaces), nonDocumentationAddresses: safety.nonDocumentationAddresses)
        if !refused.isEmpty {
            for e in refused { printError("\(e)") }
            throw ExitCode(2)
        }
        try requireLibpcap()
        // Capabilities, not the uid: root without them (setpriv, a container) cannot make namespaces either.
        guard DoctorCommand.effectiveCapabilities() & (1 << 12) != 0 else {
            printError("tcpspec: target \(description.name) needs CAP_NET_ADMIN and CAP_NET_RAW (run as root with its capabilities) to make its namespace and TAP device; 'tcpspec doctor' checks what is missing")
            throw ExitCode(3)
        }
        do {
            return try AgentTarget(description)
        } catch {
            printError("tcpspec: the target \(description.name) did not start: \(error)")
            throw ExitCode(3)
        }
    }
}
