import Core
/// Writes a case as a packetdrill script (the notation of the Linux kernel's TCP selftests), so that a finding
/// can go to kernel developers as is. Steps packetdrill cannot express (state checks, `> none`) become comments;
/// packetdrill fails on any unexpected packet, which is what `> none` says.
public enum PacketdrillExport {
    public static func script(_ file: CaseFile, originalText: String) -> String {
        var out = "// Exported by tcpspec from \(file.path)\n"
        // By scalar, as CaseParser splits: a CRLF file's "\r\n" is not the Character "\n".
        for line in originalText.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map({ String(String.UnicodeScalarView($0)) }) where line.hasPrefix("#") {
            out += "//" + line.dropFirst() + "\n"
        }
        let v6 = file.options["ip"] == "6"
        if v6 { out += "--ip_version=ipv6\n" }
        var fd = -1  // the connection's descriptor once there is one
        var listener = -1
        var first = true
        func t() -> String {
            defer { first = false }
            return first ? "0" : "+0"
        }
        for l in file.lines {
            switch l.step {
            case .call(let c, let expect):
                let result = expect.map { e -> String in
                    guard e.value < 0 else { return "\(e.value)" }
                    if case .code(let code) = e.errno { return "-1 \(Errno.name(code))" }
                    return "-1 EINVAL"
                }
                switch c {
                case .listen(let backlog):
                    out += "\(t())   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
                    out += "+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n"
                    out += "+0  bind(3, ..., ...) = 0\n"
                    out += "+0  listen(3, \(backlog)) = \(result ?? "0")\n"
                    listener = 3
                case .connect:
                    out += "\(t())   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
                    out += "+0  fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
                    out += "+0  connect(3, ..., ...) = \(result ?? "-1 EINPROGRESS") (Operation now in progress)\n"
                    fd = 3
                case .accept:
                    out += "\(t())  accept(\(listener), ..., ...) = \(result.map { $0 == "0" ? "4" : $0 } ?? "4")\n"
                    fd = 4
                case .send(let n):
                    out += "\(t())  write(\(fd), ..., \(n)) = \(result ?? "\(n)")\n"
                case .recv(let n):
                    out += "\(t())  read(\(fd), ..., \(n)) = \(result ?? "\(n)")\n"
                case .shutdown(let h):
                    let how = ["rd": "SHUT_RD", "wr": "SHUT_WR", "rdwr": "SHUT_RDWR"][h.rawValue]!
                    out += "\(t())  shutdown(\(fd), \(how)) = \(result ?? "0")\n"
                case .close:
                    out += "\(t())  close(\(fd >= 0 ? fd : listener)) = \(result ?? "0")\n"
                case .abort:
                    let d = fd >= 0 ? fd : listener
                    out += "\(t())  setsockopt(\(d), SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n"
                    out += "+0  close(\(d)) = \(result ?? "0")\n"
                case .setsockopt(let name, let v):
                    let level = name.hasPrefix("TCP_") ? "IPPROTO_TCP" : "SOL_SOCKET"
                    out += "\(t())  setsockopt(\(fd >= 0 ? fd : listener), \(level), \(name), [\(v)], 4) = \(result ?? "0")\n"
                case .release:
                    out += "// \(l.text)\n"
                }
            case .inject(let s):
                out += "\(t())  < " + segment(s, expectation: false) + "\n"
            case .expectSegment(let s):
                out += "\(t())  > " + segment(s, expectation: true) + "\n"
            case .expectNone:
                out += "// \(l.text) (packetdrill fails on any unexpected packet)\n"
            case .state(let st):
                out += "// state \(st)\n"
            case .wait(let secs):
                out += "+\(secs) `true`\n"
                first = false
            }
        }
        return out
    }

    static func value<T>(_ e: Expect<T>) -> String? {
        if case .value(let v) = e { return "\(v)" }
        return nil
    }

    static func segment(_ s: SegmentSpec, expectation: Bool) -> String {
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
        let seq = value(s.seq) ?? "0", len = value(s.length) ?? "0"
        let end = value(s.seq).flatMap { a in value(s.length).map { b in "\(UInt32(a)! &+ UInt32(b)!)" } } ?? seq
        var out = "\(f) \(seq):\(end)(\(len))"
        if let a = s.ack, let v = value(a) { out += " ack \(v)" }
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
                case .sack(let b): "sack " + stride(from: 0, to: b.count - 1, by: 2).map { "\(b[$0]):\(b[$0 + 1])" }.joined(separator: " ")
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
