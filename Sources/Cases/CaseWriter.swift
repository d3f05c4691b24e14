import Core

/// Case files written: the lines `CaseParser` reads, from the same types (the format is read and written here,
/// in one module; a test writes, parses and compares).
public enum CaseWriter {
    /// One step as its line (without the newline).
    public static func line(_ step: CaseStep) -> String {
        switch step {
        case .call(let c, let r): call(c) + (r.map { " = " + result($0) } ?? "")
        case .inject(let s): "< " + segment(s)
        case .expectSegment(let s): "> " + segment(s)
        case .expectNone: "> none"
        case .state(let s): "state \(s)"
        case .wait(let secs): "wait " + Durations.text(secs)
        }
    }

    public static func call(_ c: SocketCall) -> String {
        switch c {
        case .listen(let b): b == CaseParser.defaultBacklog ? "listen" : "listen \(b)"
        default: c.description
        }
    }

    static func result(_ r: ResultSpec) -> String {
        guard let e = r.errno else { return "\(r.value)" }
        return "\(r.value) \(e)"
    }

    /// `S. 0:0(0) ack 1 win * urg 0 <mss 1460>`: numbers relative to the ISNs, `*` for any.
    public static func segment(_ s: SegmentSpec) -> String {
        var out = "\(s.flags.notation) \(show(s.seq)):\(end(s.seq, s.length))(\(show(s.length)))"
        if let a = s.ack { out += " ack \(show(a))" }
        if let w = s.window { out += " win \(show(w))" }
        if let u = s.urgent { out += " urg \(show(u))" }
        if let o = s.options { out += " <" + o.map(option).joined(separator: ",") + (s.moreOptions ? ",..." : "") + ">" }
        if s.badChecksum { out += " [bad-checksum]" }
        if let d = s.dataOffset { out += " [doff \(d)]" }
        if let r = s.reserved { out += " [reserved \(r)]" }
        if s.oddity != .none { out += " [odd-options \(s.oddity)]" }
        return out
    }

    static func end(_ seq: Expect<UInt32>, _ len: Expect<UInt32>) -> String {
        guard case .value(let a) = seq, case .value(let n) = len else { return "*" }
        return "\(a &+ n)"
    }

    public static func show<T>(_ e: Expect<T>) -> String {
        switch e {
        case .any: "*"
        case .value(let v): "\(v)"
        }
    }

    public static func option(_ o: OptionSpec) -> String {
        switch o {
        case .mss(let v): "mss \(show(v))"
        case .wscale(let v): "wscale \(show(v))"
        case .sackOK: "sackOK"
        case .nop: "nop"
        case .eol: "eol"
        case .raw(let b): "raw " + b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        case .sack(let b): "sack " + stride(from: 0, to: b.count - 1, by: 2).map { "\(b[$0]):\(b[$0 + 1])" }.joined(separator: " ")
        case .timestamps(let v, let e): "TS val \(show(v)) ecr \(show(e))"
        }
    }
}
