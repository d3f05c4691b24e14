import Core
#if canImport(Glibc)
import Glibc
#endif

/// Writes a case as a packetdrill script (the notation of the Linux kernel's TCP selftests,
/// tools/testing/selftests/net/packetdrill), so that a finding can go to kernel developers as is.
///
/// What packetdrill's parser requires and this writes: inbound sequence numbers absolute, from the case's tester
/// ISN, so that `start:end(len)` never wraps (packetdrill takes the script's own numbers literally, and the
/// target's relative to its ISN, as cases do); errno with its text (`-1 ECONNRESET (Connection reset by peer)`);
/// the target namespace's settings as the backtick commands packetdrill runs. What a case checks that packetdrill
/// has no step for becomes a check it can make: `state X` a `%{ assert tcpi_state == … }%` block, `> none` an
/// assertion that the socket's `tcpi_segs_out` grew only by the segments expected since the input; where the
/// descriptor those need is not open (before `accept`, after `close`), a comment says the check is not made, and
/// the header lists them.
public enum PacketdrillExport {
    /// `settings`: the target namespace's sysctls (tcpspec's defaults, then the case's `option sysctl` lines),
    /// written as commands at the start; `quickAck`: the route to the tester acknowledges at once, as tcpspec's
    /// target does; `userTimeout` (ms): the TCP_USER_TIMEOUT tcpspec's target sets on every socket it makes;
    /// `keepalive`: the keep-alives it turns on (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT in whole seconds).
    public static func script(_ file: CaseFile, originalText: String, settings: [(String, String)] = [], quickAck: Bool = true,
                              userTimeout: Int? = nil, keepalive: KeepaliveSetting? = nil) -> String {
        // What the application sets on the socket before listen()/connect(), as tcpspec's Linux target does.
        var sockopts = ""
        if let u = userTimeout { sockopts += "+0  setsockopt(3, IPPROTO_TCP, TCP_USER_TIMEOUT, [\(u)], 4) = 0\n" }
        if let k = keepalive {
            sockopts += "+0  setsockopt(3, SOL_SOCKET, SO_KEEPALIVE, [1], 4) = 0\n"
            sockopts += "+0  setsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, [\(Int(k.idle.rounded()))], 4) = 0\n"
            sockopts += "+0  setsockopt(3, IPPROTO_TCP, TCP_KEEPINTVL, [\(Int(k.interval.rounded()))], 4) = 0\n"
            sockopts += "+0  setsockopt(3, IPPROTO_TCP, TCP_KEEPCNT, [\(k.probes)], 4) = 0\n"
        }
        let v6 = file.options["ip"] == "6"
        var head = "// SPDX-License-Identifier: GPL-2.0\n// Exported by tcpspec from \(file.path)\n"
        let offer = file.options["tester-options"].flatMap { try? TesterOptions(parsing: $0) }
        if offer?.timestamps == true {
            // packetdrill maps an injected TSecr only from TSvals its script states on outbound lines, and these
            // leave the target's options unchecked: without Timestamps the script stays runnable.
            head += "// The case's tester offered Timestamps (option tester-options \(offer!)); this script does not: packetdrill can\n"
            head += "// map an injected TSecr only from TSvals the script states on outbound lines, which it leaves unchecked.\n"
        }
        // By scalar, as CaseParser splits: a CRLF file's "\r\n" is not the Character "\n".
        for line in originalText.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map({ String(String.UnicodeScalarView($0)) }) where line.hasPrefix("#") {
            head += "//" + line.dropFirst() + "\n"
        }
        var body = ""
        var unchecked: [String] = []
        if v6 { body += "--ip_version=ipv6\n" }
        let base = testerBase(file)
        var first = true
        func t() -> String {
            defer { first = false }
            return first ? "0" : "+0"
        }
        for (k, v) in settings {
            body += "\(t())   `sysctl -q -w \(k)=\"\(v)\"`\n"
        }
        // A case found with delayed ACKs expects them: the route keeps them, and a pure ACK may come up to the
        // case's timeout late (packetdrill's relative time range).
        let delayedAcks = file.options["delayed-acks"] == "on"
        if quickAck && !delayedAcks {
            // packetdrill routes its remote prefix (192.0.2.0/24, 2001:db8::/32) through its tun device: the same
            // route, acknowledging at once, so that a delayed ACK does not fail the script for the wrong reason.
            let route = v6 ? "ip -6 route change $(ip -6 route show 2001:db8::/32 | head -1) quickack 1"
                : "ip route change $(ip route show 192.0.2.0/24 | head -1) quickack 1"
            body += "\(t())   `\(route)`\n"
        }
        // Where each `> none` takes its count of segments sent from: the last input or call before it, and how many
        // segments are expected between (each `> none` is checked with the socket's segs_out counter).
        var silenceFrom: [Int: (none: Int, expected: Int)] = [:]
        for (i, l) in file.lines.enumerated() where l.step == .expectNone {
            var j = i - 1, expected = 0
            while j >= 0 {
                switch file.lines[j].step {
                case .expectSegment: expected += 1
                case .state, .expectNone: break
                default:
                    silenceFrom[j] = (i, expected)
                    j = 0
                }
                j -= 1
            }
        }
        let timeout = file.options["timeout"].flatMap(Durations.seconds) ?? 0.5
        var fd = -1  // the connection's descriptor while it is open
        var listener = -1
        var snapshots: Set<Int> = []  // `> none` lines whose starting count was taken
        for (i, l) in file.lines.enumerated() {
            if let s = silenceFrom[i], fd >= 0 {
                body += "\(t())  %{ segs_out_\(file.lines[s.none].line) = tcpi_segs_out }%\n"
                snapshots.insert(s.none)
            }
            switch l.step {
            case .call(let c, let expect):
                let result = expect.map(PacketdrillExport.result)
                switch c {
                case .listen(let backlog):
                    body += "\(t())   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
                    body += "+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n"
                    body += sockopts
                    body += "+0  bind(3, ..., ...) = 0\n"
                    body += "+0  listen(3, \(backlog)) = \(result ?? "0")\n"
                    listener = 3
                case .connect:
                    body += "\(t())   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
                    body += "+0  fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
                    body += sockopts
                    body += "+0  connect(3, ..., ...) = \(result ?? PacketdrillExport.result(ResultSpec(value: -1, errno: .code(EINPROGRESS))))\n"
                    fd = 3
                case .accept:
                    let ok = expect.map { $0.value >= 0 } ?? true
                    body += "\(t())  accept(\(listener), ..., ...) = \(ok ? "4" : result!)\n"
                    if ok { fd = 4 }
                case .send(let n):
                    body += "\(t())  write(\(fd), ..., \(n)) = \(result ?? "\(n)")\n"
                case .recv(let n):
                    body += "\(t())  read(\(fd), ..., \(n)) = \(result ?? "\(n)")\n"
                case .shutdown(let h):
                    let how = ["rd": "SHUT_RD", "wr": "SHUT_WR", "rdwr": "SHUT_RDWR"][h.rawValue]!
                    body += "\(t())  shutdown(\(fd), \(how)) = \(result ?? "0")\n"
                case .close:
                    body += "\(t())  close(\(fd >= 0 ? fd : listener)) = \(result ?? "0")\n"
                    if fd >= 0 { fd = -1 } else { listener = -1 }
                case .abort:
                    let d = fd >= 0 ? fd : listener
                    body += "\(t())  setsockopt(\(d), SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n"
                    body += "+0  close(\(d)) = \(result ?? "0")\n"
                    if fd >= 0 { fd = -1 } else { listener = -1 }
                case .setsockopt(let name, let v):
                    let level = name.hasPrefix("TCP_") ? "IPPROTO_TCP" : "SOL_SOCKET"
                    body += "\(t())  setsockopt(\(fd >= 0 ? fd : listener), \(level), \(name), [\(v)], 4) = \(result ?? "0")\n"
                case .release:
                    body += "// \(l.text) (the end of tcpspec's case: packetdrill closes everything when the script ends)\n"
                }
            case .inject(var s):
                // The offer on a SYN written without options, as the runner sends it (Timestamps left out: below).
                if s.options == nil, s.flags.contains(.syn), let o = offer {
                    s.options = o.synOptionsWithoutTimestamps
                }
                if s.oddity != .none {
                    body += "// tcpspec sends this segment's options with an oddity, [odd-options \(s.oddity)] (\(s.oddity.clause)); packetdrill's grammar has no spelling for it: sent plain here\n"
                }
                body += "\(t())  < " + segment(s, expectation: false, base: base) + "\n"
            case .expectSegment(let s):
                let held = delayedAcks && s.flags == .ack && s.length.matches(0) && !s.length.matches(1)
                body += (held ? "+0~+" + String(format: "%g", timeout) : t()) + "  > " + segment(s, expectation: true, base: base) + "\n"
                if held { first = false }
            case .expectNone:
                if snapshots.contains(i), fd >= 0, let k = silenceFrom.first(where: { $0.value.none == i })?.value.expected {
                    let v = "segs_out_\(l.line)"
                    let wait = String(format: "%g", timeout)
                    body += "+\(wait)  %{ assert tcpi_segs_out == \(v) + \(k), 'line \(l.line): > none, but %d segments were sent where \(k) were expected' % (tcpi_segs_out - \(v)) }%\n"
                    first = false
                } else {
                    body += "// \(l.text) (not checked: no open descriptor to count the segments sent on)\n"
                    unchecked.append("line \(l.line): `> none`")
                }
            case .state(let st):
                if fd >= 0, let name = linuxState(st) {
                    body += "\(t())  %{ assert tcpi_state == \(name), 'line \(l.line): state %d, expected \(name)' % tcpi_state }%\n"
                } else {
                    body += "// state \(st) (not checked: no open descriptor to read tcpi_state from)\n"
                    unchecked.append("line \(l.line): `state \(st)`")
                }
            case .wait(let secs):
                body += "+\(String(format: "%g", secs)) `true`\n"
                first = false
            }
        }
        if !unchecked.isEmpty {
            head += "// Not checked by packetdrill (no open descriptor for tcp_info there): \(unchecked.joined(separator: ", ")).\n"
        }
        return head + "\n" + body
    }

    /// The tester's ISN in the script: the case's (`option tester-isn`, default 1000000), unless a number would
    /// then leave 0…2^32−1 (text below the ISN, or an ISN near the top): then the lowest that keeps every one in.
    static func testerBase(_ file: CaseFile) -> UInt32 {
        let isn = file.options["tester-isn"].flatMap { UInt32($0) } ?? 1_000_000
        var lo: Int64 = 0, hi: Int64 = 0
        func note(_ rel: UInt32, _ len: UInt32 = 0) {
            let r = Int64(Int32(bitPattern: rel))
            lo = min(lo, r)
            hi = max(hi, r + Int64(len))
        }
        for l in file.lines {
            switch l.step {
            case .inject(let s):
                if case .value(let v) = s.seq { note(v, value(s.length).flatMap { UInt32($0) } ?? 0) }
            case .expectSegment(let s):
                if let a = s.ack, case .value(let v) = a { note(v) }
                for case .sack(let b) in s.options ?? [] { for v in b { note(v) } }
            default: break
            }
        }
        if Int64(isn) + lo >= 0, Int64(isn) + hi <= Int64(UInt32.max) { return isn }
        return UInt32(clamping: -lo)
    }

    /// `= 10`, `-1 ECONNRESET (Connection reset by peer)`: packetdrill's parser wants the errno's text.
    static func result(_ e: ResultSpec) -> String {
        guard e.value < 0 else { return "\(e.value)" }
        let code: Int32 = if case .code(let c) = e.errno { c } else { EINVAL }
        return "-1 \(Errno.name(code)) (\(errnoText(code)))"
    }

    /// strerror's text as packetdrill's note accepts it (words only).
    static func errnoText(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        let words = text.map { $0.isLetter || $0.isNumber ? $0 : " " }
        return String(words).split(separator: " ").joined(separator: " ")
    }

    /// The kernel's name for a state, as packetdrill's Python code defines it (TCP_ESTABLISHED …).
    static func linuxState(_ s: TCPState) -> String? {
        switch s {
        case .closed: "TCP_CLOSE"
        case .listen: "TCP_LISTEN"
        case .synSent: "TCP_SYN_SENT"
        case .synReceived: "TCP_SYN_RECV"
        case .established: "TCP_ESTABLISHED"
        case .finWait1: "TCP_FIN_WAIT1"
        case .finWait2: "TCP_FIN_WAIT2"
        case .closeWait: "TCP_CLOSE_WAIT"
        case .closing: "TCP_CLOSING"
        case .lastAck: "TCP_LAST_ACK"
        case .timeWait: "TCP_TIME_WAIT"
        }
    }

    static func value<T>(_ e: Expect<T>) -> String? {
        if case .value(let v) = e { return "\(v)" }
        return nil
    }

    /// One segment. The tester's sequence numbers (an inbound segment's own, an outbound one's ACK and SACK
    /// blocks) are written absolute from `base`; the target's stay relative to its ISN, as packetdrill reads them.
    static func segment(_ s: SegmentSpec, expectation: Bool, base: UInt32) -> String {
        var f = ""
        if s.flags.contains(.syn) { f += "S" }
        if s.flags.contains(.fin) { f += "F" }
        if s.flags.contains(.rst) { f += "R" }
        if s.flags.contains(.psh) { f += "P" }
        if s.flags.contains(.urg) { f += "U" }
        if s.flags.contains(.ece) { f += "E" }
        if s.flags.contains(.cwr) { f += "W" }
        if s.flags.contains(.ack) { f += "." }
        if f.isEmpty { f = "." }
        let shift: UInt32 = expectation ? 0 : base
        let len: UInt32 = if case .value(let v) = s.length { v } else { 0 }
        let seq: UInt32 = if case .value(let v) = s.seq { v &+ shift } else { shift }
        var out = "\(f) \(seq):\(UInt64(seq) + UInt64(len))(\(len))"
        if let a = s.ack, case .value(let v) = a { out += " ack \(expectation ? v &+ base : v)" }
        if let w = s.window, let v = value(w) { out += " win \(v)" }
        if let u = s.urgent, let v = value(u) { out += " urg \(v)" }
        if let opts = s.options {
            let parts: [String] = opts.map { o in
                switch o {
                case .mss(let v): value(v).map { "mss \($0)" } ?? "..."
                case .wscale(let v): value(v).map { "wscale \($0)" } ?? "..."
                case .sackOK: "sackOK"
                case .nop: "nop"
                case .eol: "eol"
                case .timestamps(let v, let e): "TS val \(value(v) ?? "0") ecr \(value(e) ?? "0")"
                case .sack(let b):
                    "sack " + stride(from: 0, to: b.count - 1, by: 2).map { "\(b[$0] &+ (expectation ? base : 0)):\(b[$0 + 1] &+ (expectation ? base : 0))" }.joined(separator: " ")
                case .raw: "..."
                }
            }
            // packetdrill matches options exactly; a wildcard anywhere means "any options".
            out += parts.contains("...") || s.moreOptions ? " <...>" : " <" + parts.joined(separator: ",") + ">"
        } else if expectation {
            out += " <...>"
        }
        return out
    }
}
