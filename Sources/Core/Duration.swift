/// Durations as users write them, always with a unit (`200ms`, `1.5s`, `10m`, `1h`): case files, the command line
/// and the benchmarks read them with this one function. Finite and not negative: `nan`, `inf` and `1e400s` are not
/// durations.
/// Spec files read them too (`timing rto.min 200ms`).
public enum Durations {
    /// The units, each with its length in seconds: `ms` before `s`, for matching by suffix.
    public static let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    /// `ms, s, m, h`: for messages.
    public static var unitList: String { units.map(\.suffix).joined(separator: ", ") }

    public static func seconds(_ s: String) -> Double? {
        if s == "0" { return 0 }  // nothing needs no unit
        guard let (suffix, scale) = units.first(where: { s.hasSuffix($0.0) }), let v = Double(s.dropLast(suffix.count)),
              v.isFinite, v >= 0, (v * scale).isFinite else { return nil }
        return v * scale
    }

    /// A duration as `seconds` reads it back: whole milliseconds (`1500ms`, `200ms`).
    public static func text(_ secs: Double) -> String { "\(Int((secs * 1000).rounded()))ms" }
}

/// Keep-alives as the application turns them on for every connection (RFC 9293 §3.8.4 MUST-24): idle time before
/// the first probe, interval between unanswered probes, and how many go unanswered before the connection is given
/// up. Written `IDLE,INTERVAL,PROBES` on the command line (`2s,1s,3`).
public struct KeepaliveSetting: Hashable, Sendable {
    public var idle: Double
    public var interval: Double
    public var probes: Int

    public init(idle: Double, interval: Double, probes: Int) {
        self.idle = idle
        self.interval = interval
        self.probes = probes
    }

    /// Parses `IDLE,INTERVAL,PROBES`; nil when it is not that.
    public init?(parsing text: String) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0.filter { $0 != " " }) }
        guard parts.count == 3, let i = Durations.seconds(parts[0]), let v = Durations.seconds(parts[1]), let n = Int(parts[2]) else { return nil }
        self.init(idle: i, interval: v, probes: n)
    }

    public var text: String { "\(Durations.text(idle)),\(Durations.text(interval)),\(probes)" }

    /// The idle time and the interval in whole milliseconds (as an agent is given them).
    public var milliseconds: (idle: Int, interval: Int) { (Int((idle * 1000).rounded()), Int((interval * 1000).rounded())) }
}

/// What the application sets on every socket it makes: its R2 (TCP_USER_TIMEOUT, RFC 9293 §3.8.3 MUST-21) and
/// keep-alives (§3.8.4 MUST-24). A case records them (`option user-timeout`, `option keepalive`), so that a replay
/// runs with the settings it was found with.
public struct SocketSettings: Hashable, Sendable {
    /// Seconds; nil: the stack's own R2.
    public var userTimeout: Double?
    /// nil: off (MUST-25).
    public var keepalive: KeepaliveSetting?

    public init(userTimeout: Double? = nil, keepalive: KeepaliveSetting? = nil) {
        self.userTimeout = userTimeout
        self.keepalive = keepalive
    }

    /// The case's `option` lines: both, `off` where unset.
    public var caseOptions: [(key: String, value: String)] {
        [("user-timeout", userTimeout.map(Durations.text) ?? "off"), ("keepalive", keepalive?.text ?? "off")]
    }

    /// From a case's options (`user-timeout`, `keepalive`): nil for a key the case does not set, `.some(nil)` for `off`.
    public static func fromCase(_ options: [String: String]) -> (userTimeout: Double??, keepalive: KeepaliveSetting??) {
        let u: Double?? = options["user-timeout"].map { $0 == "off" ? .none : Durations.seconds($0) }
        let k: KeepaliveSetting?? = options["keepalive"].map { $0 == "off" ? .none : KeepaliveSetting(parsing: $0) }
        return (u, k)
    }
}
