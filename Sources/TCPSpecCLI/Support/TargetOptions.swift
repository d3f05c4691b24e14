import Core
import ArgumentParser
import Foundation
import Link
import Targets

/// Options shared by the commands that drive a target.
struct TargetOptions: ParsableArguments {
    @Option(help: "The stack under test: linux (the local kernel in namespaces tcpspec makes), reference (the model itself, in process), reference:FAULT (with a seeded fault), NAME (a userspace stack described in Targets/NAME.toml, e.g. pytcp) or the path of a target description.") var target: String = "linux"
    @Option(help: "IP version of the connection under test: 4 or 6.") var ip: Int = 4
    @Option(name: .customLong("sysctl"), help: "A target-namespace sysctl, KEY=VALUE (repeatable), over the defaults chosen for determinism.")
    var sysctls: [String] = []
    @Option(help: "The longest wait a case may make for a timer on a real stack's clock (default 5s; Linux's 60 s TIME-WAIT needs 70s). The reference stack's clock is virtual: any wait is free.")
    var maxWait: String?
    @Option(help: "TCP_USER_TIMEOUT the application sets on every socket of the linux target: its R2 (RFC 9293 §3.8.3 MUST-21), judged under every profile. A duration, or 'off' for the kernel's own (tcp_retries2, about 15 minutes).")
    var userTimeout: String = "3s"
    @Option(help: "Keep-alives the application turns on for every socket of the linux or reference target (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT; RFC 9293 §3.8.4), as IDLE,INTERVAL,PROBES in whole seconds, e.g. 1s,1s,3; or 'off' (the default, MUST-25). With --user-timeout Linux gives up by that time instead of the count.")
    var keepalive: String = "off"
    @Flag(help: "Let the linux or reference target delay its ACKs (Linux: its route without quickack; the reference stack: 200 ms) and judge each delayed ACK against the profile's bound (RFC 9293 §3.8.6.3 MUST-40: under 0.5 s). Off, the target acknowledges at once.")
    var delayedAcks = false
    @Option(help: "What the tester offers on its SYNs: 'draw' (the default: one of 32 combinations per connection, seeded — MSS or none; Window Scale off, 0, 7 or 14; SACK-Permitted; Timestamps), or one offer for every connection, like 'mss 1460,sackOK,TS,wscale 7' or 'none' (a shift above 14, e.g. 'wscale 15', the target must read as 14). Once the target's SYN agrees, the tester sends Timestamps on every segment and its windows are read scaled; the target's windows are scaled and its options judged (RFC 9293 §3.7.1, RFC 7323, RFC 2018).")
    var testerOptions: String = "draw"
    @OptionGroup var safety: SafetyOptions

    /// `--tester-options`: nil for `draw` (validated).
    var testerOffer: TesterOptions? { testerOptions == "draw" ? nil : try? TesterOptions(parsing: testerOptions) }

    /// `--keepalive`, nil for `off` (validated).
    var keepaliveSetting: KeepaliveSetting? { keepalive == "off" ? nil : KeepaliveSetting(parsing: keepalive) }

    /// `--user-timeout` in seconds, nil for `off` (validated).
    var userTimeoutSeconds: Double? { userTimeout == "off" ? nil : Durations.seconds(userTimeout) }

    /// `--max-wait` in seconds (validated).
    var maxWaitSeconds: Double? { maxWait.flatMap(Durations.seconds) }

    func validate() throws {
        guard ip == 4 || ip == 6 else { throw ValidationError("--ip is 4 or 6") }
        if let w = maxWait, Durations.seconds(w) == nil {
            throw ValidationError("--max-wait takes a duration with a unit, like 5s or 70s (not '\(w)')")
        }
        if userTimeout != "off" {
            // The kernel takes whole milliseconds, at most INT_MAX; 0 would mean the kernel's own.
            guard let u = Durations.seconds(userTimeout), u >= 0.001, u <= 2_000_000 else {
                throw ValidationError("--user-timeout takes a duration with a unit from 1ms, like 3s, or 'off' (not '\(userTimeout)')")
            }
        }
        if keepalive != "off" {
            // The kernel takes whole seconds (1 to 32767) and at most 127 probes.
            guard let k = KeepaliveSetting(parsing: keepalive), k.idle >= 1, k.idle <= 32767, k.interval >= 1, k.interval <= 32767,
                  k.idle == k.idle.rounded(), k.interval == k.interval.rounded(), (1...127).contains(k.probes) else {
                throw ValidationError("--keepalive takes IDLE,INTERVAL,PROBES in whole seconds from 1s and 1 to 127 probes, like 1s,1s,3, or 'off' (not '\(keepalive)')")
            }
            // MUST-29: one unanswered probe must not end a connection.
            let n = LinuxTarget.keepaliveProbes(k, userTimeoutMilliseconds: userTimeoutSeconds.map { Int32(($0 * 1000).rounded()) })
            guard n >= 2 else {
                throw ValidationError("--keepalive \(keepalive) with --user-timeout \(userTimeout): Linux would give the connection up after \(n) unanswered probe (the user timeout replaces the count), which RFC 9293 §3.8.4 MUST-29 forbids; make IDLE + INTERVAL shorter than the user timeout, or the count at least 2 with --user-timeout off")
            }
        }
        if testerOptions != "draw" {
            do throws(TesterOptionsError) { _ = try TesterOptions(parsing: testerOptions) } catch {
                throw ValidationError("--tester-options '\(testerOptions)', column \(error.column + 1): \(error.reason)")
            }
        }
        for s in sysctls where !(s.contains("=") && s.hasPrefix("net.")) {
            throw ValidationError("--sysctl takes net.KEY=VALUE, got '\(s)'")
        }
    }

    func configuration(extra: [String: String] = [:]) -> Topology.Configuration {
        var map = extra
        for s in sysctls {
            let kv = s.split(separator: "=", maxSplits: 1).map(String.init)
            map[kv[0]] = kv[1]
        }
        return Topology.Configuration(ip: ip == 6 ? .v6 : .v4, sysctls: map, userTimeout: userTimeoutSeconds, keepalive: keepaliveSetting, delayedAcks: delayedAcks)
    }

    /// Without CAP_NET_ADMIN, re-executes tcpspec inside a new user and network namespace (`unshare -Urn`),
    /// where it may make the namespaces it needs. Returns only if that is not needed or not possible.
    static func reexecInUserNamespaceIfNeeded() {
        let caps = DoctorCommand.effectiveCapabilities()
        guard caps & (1 << 12) == 0, ProcessInfo.processInfo.environment["TCPSPEC_IN_USERNS"] == nil,
              let unshare = ["/usr/bin/unshare", "/bin/unshare"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return }
        // A failed unshare would replace tcpspec with unshare's own one-line error: try it first, and keep its words.
        do {
            let probe = try Sys.runProgram(unshare, arguments: ["-Urn", "--", "/bin/true"])
            guard probe.status == 0 else {
                userNamespaceFailure = String(decoding: probe.errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
        } catch {
            userNamespaceFailure = "\(unshare): \(error)"
            return
        }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        setenv("TCPSPEC_IN_USERNS", "1", 1)
        // The re-executed tcpspec records itself where it can write (this record would outlive the exec).
        RunRegistry.end()
        var argv: [UnsafeMutablePointer<CChar>?] = ([unshare, "-Urn", "--", exe] + CommandLine.arguments.dropFirst()).map { strdup($0) }
        argv.append(nil)
        execv(unshare, &argv)
        // execv returned: carry on and let the namespace creation report what is missing.
    }

    /// Why the user-namespace re-execution was not possible, if it was tried.
    nonisolated(unsafe) static var userNamespaceFailure: String?

    /// What to say when namespaces cannot be made: what is missing and how to fix it.
    static func privilegeMessage(_ e: Error) -> String {
        let userns = ProcessInfo.processInfo.environment["TCPSPEC_IN_USERNS"] != nil ? " (also inside a user namespace)" : ""
        let tried = userNamespaceFailure.map { " Without CAP_NET_ADMIN tcpspec re-executes itself in a user namespace, which failed here: \($0)." } ?? ""
        return "tcpspec: cannot create network namespaces\(userns): \(e).\(tried) Run as root, or with CAP_NET_ADMIN and CAP_NET_RAW, or allow unprivileged user namespaces (sysctl user.max_user_namespaces); 'tcpspec doctor' checks what is missing."
    }

    /// Starts the target, or exits with a message that names what is missing.
    func start(extraSysctls: [String: String] = [:]) throws -> LinuxTarget {
        safety.apply()
        try requireLibpcap()
        do {
            return try LinuxTarget(configuration(extra: extraSysctls))
        } catch let e as SystemError where e.isPermission {
            printError(Self.privilegeMessage(e))
            throw ExitCode(3)
        } catch {
            printError(error is SafetyError ? "\(error)" : "tcpspec: the linux target did not start: \(error)")
            throw ExitCode(3)
        }
    }
}
