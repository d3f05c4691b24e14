import Core
import Foundation
import Link
import Wire

/// A userspace stack's target description (`Targets/NAME.toml`, docs/agent-protocol.md): how to start its agent,
/// the device it attaches to, and the settings recorded with every result.
///
/// ```
/// tcpspec fuzz --target pytcp            # Targets/pytcp.toml
/// tcpspec conform --target ./my-stack.toml --out out/mine
/// ```
public struct TargetDescription: Sendable {
    public enum LinkKind: String, Sendable { case tap, tun }
    public enum Barrier: String, Sendable { case rst, quiet }

    /// The file it was read from, and its directory (paths in it are relative to that).
    public var file: String
    public var directory: String
    public var name: String
    public var summary: String = ""
    public var command: [String]
    /// The agent's working directory (absolute).
    public var workingDirectory: String
    public var environment: [(String, String)] = []
    public var readyTimeout: Double = 30
    public var callTimeout: Double = 5
    public var install: [String] = []
    /// A path that exists once `install` has run (absolute).
    public var installed: String?
    public var link: LinkKind = .tap
    public var ip: IPVersion = .v4
    public var mac = MACAddress([0x02, 0x00, 0x00, 0x77, 0x00, 0x02])
    public var mtu = 1500
    public var barrier: Barrier = .rst
    /// `[link] device`: an existing TAP/TUN device the user prepared, used as it is in tcpspec's own namespace
    /// instead of one tcpspec makes (needs `--allow-foreign-interface NAME`), and where in the file it is named.
    public var device: String?
    public var deviceAt: TOMLReader.Position?
    /// `[link] address` / `peer_address`: the stack's and the tester's addresses (default 192.0.2.2 / .1, or
    /// 2001:db8::2 / ::1), and where each is written (addresses outside the documentation ranges are refused
    /// unless `--allow-non-documentation-addresses`).
    public var address: IPAddress?
    public var peerAddress: IPAddress?
    public var addressPositions: [(IPAddress, TOMLReader.Position)] = []
    public var quietTime: Double = 0.05
    /// `[link] timer_slack_ms`: how far the stack's timers may stray from their windows (its timer loop's tick).
    public var timerSlack: Double?
    /// `[link] timers = "slowed"`: the description slows the stack's timers (so that no retransmission comes
    /// within a case): they are not judged, and timer tests say why.
    public var timersSlowed = false
    /// `[link] acks = "delayed"`: the stack delays its ACKs (its settings leave its delayed-ACK timer on), judged
    /// against the profile's `timing delayed-ack`; "immediate" (the default): it acknowledges at once.
    public var delayedAcks = false
    /// `[application] user_timeout_ms`: the R2 the application sets on every socket (TCP_USER_TIMEOUT's meaning),
    /// in milliseconds; the agent gets it as TCPSPEC_USER_TIMEOUT_MS, and every profile judges the stack's R2 by it.
    public var userTimeoutMilliseconds: Int?
    /// `[application] keepalive_idle_ms`, `keepalive_interval_ms`, `keepalive_probes` (all three or none): the
    /// keep-alives the application turns on for every socket (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT; RFC 9293 §3.8.4
    /// MUST-24), passed as TCPSPEC_KEEPALIVE_*; the agent must confirm them in its hello (`"keepalive": true`).
    public var keepalive: KeepaliveSetting?
    /// `[settings]`, in file order, as JSON literals (strings quoted), handed to the agent.
    public var settings: [(String, String)] = []

    public typealias Failure = TOMLReader.Failure

    /// Reads and checks a description; every error names its file, line and column.
    public static func load(_ path: String) throws -> TargetDescription {
        let url = URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Failure(file: path, at: .init(line: 1, column: 1), message: FileManager.default.fileExists(atPath: path) ? "not a readable UTF-8 file" : "no such file")
        }
        return try parse(text, file: path, directory: url.deletingLastPathComponent().standardizedFileURL.path)
    }

    public static func parse(_ text: String, file: String, directory: String) throws(Failure) -> TargetDescription {
        let tables = try TOMLReader.read(text, file: file)
        func fail(_ at: TOMLReader.Position, _ m: String) -> Failure { Failure(file: file, at: at, message: m) }
        func string(_ e: TOMLReader.Entry) throws(Failure) -> String {
            guard case .string(let s) = e.value.value else { throw fail(e.value.at, "'\(e.key)' is a string, not \(e.value.value.kind)") }
            return s
        }
        func integer(_ e: TOMLReader.Entry, _ range: ClosedRange<Int>) throws(Failure) -> Int {
            guard case .integer(let n) = e.value.value else { throw fail(e.value.at, "'\(e.key)' is an integer, not \(e.value.value.kind)") }
            guard range.contains(n) else { throw fail(e.value.at, "'\(e.key)' must be in \(range.lowerBound)...\(range.upperBound), not \(n)") }
            return n
        }
        func strings(_ e: TOMLReader.Entry) throws(Failure) -> [String] {
            guard case .array(let items) = e.value.value else { throw fail(e.value.at, "'\(e.key)' is an array of strings, not \(e.value.value.kind)") }
            var out: [String] = []
            for it in items {
                guard case .string(let s) = it.value else { throw fail(it.at, "'\(e.key)' holds strings only, not \(it.value.kind)") }
                out.append(s)
            }
            return out
        }
        func absolute(_ p: String) -> String {
            p.hasPrefix("/") ? p : URL(fileURLWithPath: directory).appendingPathComponent(p).standardizedFileURL.path
        }
        let known: [String: [String]] = [
            "": ["name", "description", "version"],
            "start": ["command", "dir", "env", "ready_timeout_ms", "call_timeout_ms", "install", "installed"],
            "link": ["type", "ip", "mac", "mtu", "barrier", "quiet_ms", "device", "address", "peer_address", "timers", "timer_slack_ms", "acks"],
            "application": ["user_timeout_ms", "keepalive_idle_ms", "keepalive_interval_ms", "keepalive_probes"],
            "settings": [],
        ]
        var name: String?
        var command: [String]?
        var dir = "."
        var d = TargetDescription(file: file, directory: directory, name: "", command: [], workingDirectory: directory)
        // The keep-alive keys, kept until all three are known (each with where it was written).
        var keepalive: [String: (Int, TOMLReader.Position)] = [:]
        var applicationAt: TOMLReader.Position?
        for t in tables {
            guard let keys = known[t.name] else {
                throw fail(t.at, "unknown table [\(t.name)]; a target description has [start], [link], [application] and [settings]")
            }
            for e in t.entries {
                if t.name == "settings" {
                    switch e.value.value {
                    case .string(let s): d.settings.append((e.key, jsonString(s)))
                    case .integer(let n): d.settings.append((e.key, "\(n)"))
                    case .bool(let b): d.settings.append((e.key, "\(b)"))
                    default: throw fail(e.value.at, "a setting is a string, an integer or a boolean, not \(e.value.value.kind)")
                    }
                    continue
                }
                guard keys.contains(e.key) else {
                    let table = t.name.isEmpty ? "the top level" : "[\(t.name)]"
                    throw fail(e.keyAt, "unknown key '\(e.key)' in \(table); known: \(keys.joined(separator: ", "))")
                }
                switch (t.name, e.key) {
                case ("", "name"):
                    let n = try string(e)
                    guard !n.isEmpty, n.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
                        throw fail(e.value.at, "a target name is letters, digits, '-', '_' and '.'")
                    }
                    name = n
                case ("", "description"): d.summary = try string(e)
                case ("", "version"):
                    guard try integer(e, 1...1000) == 1 else { throw fail(e.value.at, "this tcpspec reads target descriptions of version 1") }
                case ("start", "command"):
                    let c = try strings(e)
                    guard !c.isEmpty, !c[0].isEmpty else { throw fail(e.value.at, "'command' needs at least the program to run") }
                    command = c
                case ("start", "dir"): dir = try string(e)
                case ("start", "env"):
                    guard case .table(let kv) = e.value.value else { throw fail(e.value.at, "'env' is an inline table { NAME = \"value\" }, not \(e.value.value.kind)") }
                    for (k, v) in kv {
                        guard case .string(let s) = v.value else { throw fail(v.at, "environment values are strings") }
                        guard !k.hasPrefix("TCPSPEC_") else { throw fail(v.at, "TCPSPEC_* variables are set by tcpspec itself") }
                        d.environment.append((k, s))
                    }
                case ("start", "ready_timeout_ms"): d.readyTimeout = Double(try integer(e, 1...600_000)) / 1000
                case ("start", "call_timeout_ms"): d.callTimeout = Double(try integer(e, 1...600_000)) / 1000
                case ("start", "install"): d.install = try strings(e)
                case ("start", "installed"): d.installed = try string(e)
                case ("link", "type"):
                    guard let k = LinkKind(rawValue: try string(e)) else { throw fail(e.value.at, "'type' is \"tap\" or \"tun\"") }
                    d.link = k
                case ("link", "ip"):
                    guard let v = IPVersion(rawValue: try integer(e, 4...6)) else { throw fail(e.value.at, "'ip' is 4 or 6") }
                    d.ip = v
                case ("link", "mac"):
                    let s = try string(e)
                    let parts = s.split(separator: ":")
                    let bytes = parts.compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
                    guard parts.count == 6, bytes.count == 6 else { throw fail(e.value.at, "'mac' is six hex pairs, 02:00:00:77:00:02") }
                    guard bytes[0] & 1 == 0 else { throw fail(e.value.at, "'mac' must be a unicast address") }
                    d.mac = MACAddress(bytes)
                case ("link", "mtu"): d.mtu = try integer(e, 576...65535)
                case ("link", "barrier"):
                    guard let b = Barrier(rawValue: try string(e)) else { throw fail(e.value.at, "'barrier' is \"rst\" (the stack resets a SYN to a closed port) or \"quiet\"") }
                    d.barrier = b
                case ("link", "quiet_ms"): d.quietTime = Double(try integer(e, 1...10_000)) / 1000
                case ("link", "timer_slack_ms"): d.timerSlack = Double(try integer(e, 0...10_000)) / 1000
                case ("application", "user_timeout_ms"): d.userTimeoutMilliseconds = try integer(e, 1...3_600_000)
                case ("application", "keepalive_idle_ms"), ("application", "keepalive_interval_ms"):
                    keepalive[e.key] = (try integer(e, 1...32_767_000), e.value.at)
                    applicationAt = applicationAt ?? t.at
                case ("application", "keepalive_probes"):
                    // RFC 9293 §3.8.4 MUST-29: one unanswered probe must not end a connection.
                    let n = try integer(e, 1...127)
                    guard n >= 2 else { throw fail(e.value.at, "'keepalive_probes' must be at least 2: giving a connection up after one unanswered probe is what RFC 9293 §3.8.4 MUST-29 forbids, so the tests would judge the setting, not the stack") }
                    keepalive[e.key] = (n, e.value.at)
                    applicationAt = applicationAt ?? t.at
                case ("link", "acks"):
                    switch try string(e) {
                    case "immediate": d.delayedAcks = false
                    case "delayed": d.delayedAcks = true
                    default: throw fail(e.value.at, "'acks' is \"immediate\" (every reply follows its input) or \"delayed\" (the stack's delayed ACKs, judged against the profile's bound)")
                    }
                case ("link", "timers"):
                    switch try string(e) {
                    case "real": d.timersSlowed = false
                    case "slowed": d.timersSlowed = true
                    default: throw fail(e.value.at, "'timers' is \"real\" (judged against the profile's windows) or \"slowed\" (the settings slow them: not judged)")
                    }
                case ("link", "device"):
                    let n = try string(e)
                    // IFNAMSIZ is 16 with the terminating NUL; the kernel refuses '/', ':' and whitespace in names.
                    guard !n.isEmpty, n.utf8.count <= 15, n != ".", n != "..", !n.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace }) else {
                        throw fail(e.value.at, "'device' is an interface name: 1 to 15 characters, no '/', ':' or spaces")
                    }
                    d.device = n
                    d.deviceAt = e.value.at
                case ("link", "address"), ("link", "peer_address"):
                    guard let a = IPAddress(try string(e)) else { throw fail(e.value.at, "'\(e.key)' is an IPv4 or IPv6 address, e.g. \"192.0.2.2\"") }
                    if e.key == "address" { d.address = a } else { d.peerAddress = a }
                    d.addressPositions.append((a, e.value.at))
                default: break
                }
            }
        }
        guard let n = name else { throw fail(.init(line: 1, column: 1), "a target description needs name = \"...\" at the top") }
        guard let c = command else {
            let at = tables.first { $0.name == "start" }?.at ?? .init(line: 1, column: 1)
            throw fail(at, "a target description needs [start] command = [\"program\", \"arg\", ...]")
        }
        if let at = applicationAt {
            let keys = ["keepalive_idle_ms", "keepalive_interval_ms", "keepalive_probes"]
            let missing = keys.filter { keepalive[$0] == nil }
            guard missing.isEmpty else {
                throw fail(at, "keep-alives need all of keepalive_idle_ms, keepalive_interval_ms and keepalive_probes in [application]; missing: \(missing.joined(separator: ", "))")
            }
            d.keepalive = KeepaliveSetting(idle: Double(keepalive[keys[0]]!.0) / 1000, interval: Double(keepalive[keys[1]]!.0) / 1000, probes: keepalive[keys[2]]!.0)
        }
        for (a, at) in d.addressPositions where (a.bytes.count == 16) != (d.ip == .v6) {
            throw fail(at, "\(a) is not an IPv\(d.ip.rawValue) address ([link] ip = \(d.ip.rawValue))")
        }
        if let a = d.address, a == d.peerAddress {
            throw fail(d.addressPositions.last!.1, "'address' and 'peer_address' must differ")
        }
        d.name = n
        d.command = c
        d.workingDirectory = absolute(dir)
        // The agent's program, install command and marker are relative to its working directory.
        d.installed = d.installed.map { $0.hasPrefix("/") ? $0 : URL(fileURLWithPath: d.workingDirectory).appendingPathComponent($0).standardizedFileURL.path }
        return d
    }

    /// The stack's address and the tester's.
    public var targetAddress: IPAddress { address ?? ip.targetAddress }
    public var testerAddress: IPAddress { peerAddress ?? ip.testerAddress }

    /// The file:line:col errors for what this description asks that the user has not allowed: a device tcpspec
    /// does not make, addresses outside the documentation ranges.
    public func safetyErrors(allowedInterfaces: Set<String>, nonDocumentationAddresses: Bool) -> [Failure] {
        var out: [Failure] = []
        if let dev = device, !allowedInterfaces.contains(dev) {
            out.append(Failure(file: file, at: deviceAt ?? .init(line: 1, column: 1), message: "device '\(dev)' is an interface tcpspec did not create; to inject on it, name it with --allow-foreign-interface \(dev)"))
        }
        if !nonDocumentationAddresses {
            for (a, at) in addressPositions where !InjectionGuard.isDocumentation(a) {
                out.append(Failure(file: file, at: at, message: "\(a) is not a documentation address (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32); pass --allow-non-documentation-addresses to use it"))
            }
        }
        return out
    }

    /// A JSON string literal.
    public static func jsonString(_ s: String) -> String {
        var o = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            case "\t": o += "\\t"
            default:
                if u.value < 0x20 { o += String(format: "\\u%04x", u.value) } else { o.unicodeScalars.append(u) }
            }
        }
        return o + "\""
    }

    /// The settings as one JSON object, for the agent's `TCPSPEC_SETTINGS`.
    public var settingsJSON: String {
        "{" + settings.map { "\(Self.jsonString($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// Finds `--target NAME`: a path (has a '/' or ends in .toml) as given; a name in `Targets/NAME.toml` of the
    /// current directory, else of the tcpspec checkout this binary was built from.
    public static func locate(_ nameOrPath: String, checkout: String?) -> String? {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".toml") { return nameOrPath }
        var dirs = [FileManager.default.currentDirectoryPath]
        if let c = checkout { dirs.append(c) }
        for d in dirs {
            let p = URL(fileURLWithPath: d).appendingPathComponent("Targets/\(nameOrPath).toml").path
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        return nil
    }
}
