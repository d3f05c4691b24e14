import Core
import ArgumentParser
import Foundation
import Link
import Targets
#if canImport(Glibc)
import Glibc
#endif

/// Reports what tcpspec needs and whether this machine has it; exits non-zero when targets cannot run.
///
/// ```
/// $ tcpspec doctor
/// ok    privileges       euid 0, CAP_NET_ADMIN and CAP_NET_RAW
/// ok    libpcap          libpcap version 1.10.3 (with TPACKET_V3)
/// ...
/// ```
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "doctor", abstract: "Check libpcap, namespaces, TUN/TAP, raw sockets and tools; exit non-zero if targets cannot run.")

    struct Check {
        var name: String
        var ok: Bool
        var detail: String
        var required: Bool
    }

    func run() throws {
        // Without privileges, check what a run would see: the user namespace tcpspec re-executes itself in.
        TargetOptions.reexecInUserNamespaceIfNeeded()
        // Also the way to sweep by hand what killed runs left (tcpspec doctor prints what it swept).
        RunScope.begin("doctor")
        var checks: [Check] = []
        let inUserns = ProcessInfo.processInfo.environment["TCPSPEC_IN_USERNS"] != nil
        let caps = Self.effectiveCapabilities()
        let netAdmin = caps & (1 << 12) != 0, netRaw = caps & (1 << 13) != 0
        checks.append(Check(name: "privileges", ok: netAdmin && netRaw,
                            detail: "euid \(geteuid())\(inUserns ? " in a user namespace tcpspec made" : ""), " + (netAdmin && netRaw ? "CAP_NET_ADMIN and CAP_NET_RAW" : "missing \(netAdmin ? "" : "CAP_NET_ADMIN ")\(netRaw ? "" : "CAP_NET_RAW")(run as root, or tcpspec re-executes itself in a user namespace)"),
                            required: false))
        checks.append(Check(name: "libpcap", ok: PcapLibrary.version != nil, detail: PcapLibrary.version ?? PcapLibrary.missingMessage ?? "", required: true))
        var topologyOK = false
        do {
            let t = try LinuxTarget()
            topologyOK = true
            checks.append(Check(name: "namespaces", ok: true, detail: "made tester and target network namespaces, a veth pair, opened libpcap on it (kernel \(LinuxTarget.kernelRelease))", required: true))
            let tun = try? t.topology.target.run { () -> Bool in
                let fd = try Sys.tunOpen("tcpspec-tap0", tap: true)
                Sys.close(fd)
                return true
            }
            checks.append(Check(name: "tun/tap", ok: tun == true, detail: tun == true ? "/dev/net/tun opens, TAP devices can be made" : "cannot open /dev/net/tun or make a TAP device (userspace targets need it)", required: false))
            t.close()
        } catch {
            checks.append(Check(name: "namespaces", ok: false, detail: "\(error)", required: true))
        }
        do throws(SystemError) {
            Sys.close(try Sys.rawPacketSocket())
            checks.append(Check(name: "raw sockets", ok: true, detail: "AF_PACKET sockets open", required: !topologyOK))
        } catch {
            checks.append(Check(name: "raw sockets", ok: false, detail: "AF_PACKET: \(String(cString: strerror(error.errno)))", required: !topologyOK))
        }
        let userns = (try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        checks.append(Check(name: "user namespaces", ok: userns != "0", detail: "user.max_user_namespaces = \(userns) (lets tcpspec run without root)", required: false))
        for (tool, why) in [("dot", "Graphviz, for state diagrams"), ("tshark", "opening written pcaps in tests"), ("unshare", "running without root")] {
            let path = ["/usr/bin/", "/usr/sbin/", "/bin/"].map { $0 + tool }.first { FileManager.default.isExecutableFile(atPath: $0) }
            checks.append(Check(name: tool, ok: path != nil, detail: path.map { "\($0) (\(why))" } ?? "not found (\(why))", required: false))
        }
        for c in checks {
            let tag = c.ok ? "ok   " : (c.required ? "FAIL " : "warn ")
            print("\(tag) \(c.name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(c.detail)")
        }
        if checks.contains(where: { $0.required && !$0.ok }) {
            print("tcpspec cannot drive targets on this machine.")
            throw ExitCode(1)
        }
    }

    static func effectiveCapabilities() -> UInt64 {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) ?? 0
        }
        return 0
    }
}
