import Core

/// Parses `.case` files (docs/case-format.md). Every error is reported with file:line:col; parsing goes on
/// with the next line, so one run reports them all.
public enum CaseParser {
    /// The backlog of a `listen` written without one.
    public static let defaultBacklog: Int32 = 1024
    public static let calls: Set<String> = ["listen", "connect", "accept", "send", "recv", "shutdown", "close", "abort", "setsockopt"]
    public static let optionKeys: Set<String> = ["ip", "target-port", "tester-port", "tester-isn", "tester-options", "timeout", "settle", "sysctl", "window", "user-timeout", "keepalive", "delayed-acks", "judge"]

    public static func parse(path: String, text: String) -> (CaseFile, [Diagnostic]) {
        let source = SourceFile(path: path, text: text)
        var file = CaseFile(path: path)
        var diags: [Diagnostic] = []
        var summary: [String] = []
        var inHeader = true
        // Lines are split on the scalar "\n": as Characters, "\r\n" is one grapheme that is not "\n", so a CRLF
        // file would be read as a single line (found by fuzzing, Fuzz/regressions/case/).
        for (i, rawLine) in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = i + 1
            var line = String(String.UnicodeScalarView(rawLine))
            if line.hasSuffix("\r") { line.removeLast() }
            if line.unicodeScalars.contains("\u{FFFD}") {
                diags.append(Diagnostic(.encoding, "invalid UTF-8 byte sequence", at: SourceLocation(file: path, line: lineNo, column: 1), sourceLine: line))
                continue
            }
            let trimmed = line.trimmingSpaces()
            if trimmed.hasPrefix("#") {
                if inHeader { summary.append(trimmed.dropFirst().trimmingSpaces()) }
                continue
            }
            let body = stripComment(line)
            if body.trimmingSpaces().isEmpty { continue }
            inHeader = false
            var cur = Cursor(chars: Array(body.unicodeScalars), path: path, line: lineNo)
            do {
                if let step = try parseLine(&cur, file: &file) {
                    file.lines.append(CaseLine(step: step, line: lineNo, text: body.trimmingSpaces()))
                }
            } catch let d as Diagnostic {
                var d = d
                d.sourceLine = source.lineText(lineNo)
                diags.append(d)
            } catch {}
        }
        file.summary = summary.joined(separator: " ")
        return (file, diags)
    }

    static func stripComment(_ s: String) -> String {
        if let i = s.firstIndex(of: "#") { return String(s[..<i]) }
        return s
    }

    struct Cursor {
        var chars: [Unicode.Scalar]
        var pos = 0
        let path: String
        let line: Int

        var loc: SourceLocation { SourceLocation(file: path, line: line, column: pos + 1) }
        var atEnd: Bool {
            var p = pos
            while p < chars.count, chars[p] == " " || chars[p] == "\t" { p += 1 }
            return p >= chars.count
        }

        mutating func skipSpace() { while pos < chars.count, chars[pos] == " " || chars[pos] == "\t" { pos += 1 } }

        func error(_ msg: String, at column: Int? = nil) -> Diagnostic {
            Diagnostic(.syntax, msg, at: SourceLocation(file: path, line: line, column: (column ?? pos) + 1))
        }

        /// A word: up to the next space, or one of the punctuation characters that end words.
        mutating func word() -> (String, Int)? {
            skipSpace()
            guard pos < chars.count else { return nil }
            let start = pos
            while pos < chars.count, chars[pos] != " ", chars[pos] != "\t" {
                // '<' and '[' open options and modifiers, except as a word's first character ('<' injects).
                if pos > start, chars[pos] == "<" || chars[pos] == "[" { break }
                pos += 1
            }
            var v = String.UnicodeScalarView()
            v.append(contentsOf: chars[start..<pos])
            return (String(v), start)
        }

        mutating func expectWord(_ what: String) throws -> (String, Int) {
            guard let w = word() else { throw error("expected \(what)") }
            return w
        }

        mutating func peekChar() -> Unicode.Scalar? {
            skipSpace()
            return pos < chars.count ? chars[pos] : nil
        }

        /// The text up to and including `close`.
        mutating func bracket(_ open: Unicode.Scalar, _ close: Unicode.Scalar) throws -> (String, Int) {
            skipSpace()
            let start = pos
            guard pos < chars.count, chars[pos] == open else { throw error("expected '\(open)'") }
            pos += 1
            while pos < chars.count, chars[pos] != close { pos += 1 }
            guard pos < chars.count else { throw error("'\(open)' is never closed", at: start) }
            var v = String.UnicodeScalarView()
            v.append(contentsOf: chars[(start + 1)..<pos])
            pos += 1
            return (String(v), start + 1)
        }
    }

    static func parseLine(_ c: inout Cursor, file: inout CaseFile) throws -> CaseStep? {
        guard let (first, col) = c.word() else { return nil }
        switch first {
        case "option":
            let (key, kcol) = try c.expectWord("an option name")
            guard optionKeys.contains(key) else {
                throw c.error("unknown option '\(key)'; options are \(optionKeys.sorted().joined(separator: ", "))", at: kcol)
            }
            var (value, vcol) = try c.expectWord("a value for option \(key)")
            // A sysctl value may be several words (net.ipv4.tcp_rmem=4096 32768 32768): the rest of the line.
            if key == "sysctl" || key == "tester-options" { while let (w, _) = c.word() { value += " " + w } }
            if key == "tester-options" {
                do throws(TesterOptionsError) { _ = try TesterOptions(parsing: value) } catch { throw c.error(error.reason, at: vcol + error.column) }
            }
            if key == "ip", value != "4", value != "6" { throw c.error("option ip is 4 or 6", at: vcol) }
            if ["target-port", "tester-port"].contains(key), UInt16(value) == nil { throw c.error("a port is 1 to 65535", at: vcol) }
            if key == "tester-isn", UInt32(value) == nil { throw c.error("an ISN is a 32-bit number", at: vcol) }
            if ["timeout", "settle"].contains(key), Durations.seconds(value) == nil { throw c.error("a duration is like 200ms or 1s", at: vcol) }
            if key == "user-timeout", value != "off", (Durations.seconds(value) ?? 0) < 0.001 { throw c.error("option user-timeout is a duration from 1ms, like 3s, or off", at: vcol) }
            if key == "delayed-acks", value != "on", value != "off" { throw c.error("option delayed-acks is on or off", at: vcol) }
            if key == "judge", value != "window-shrink" { throw c.error("option judge is window-shrink (the right edge of the target's window must not move left)", at: vcol) }
            if key == "keepalive", value != "off", (KeepaliveSetting(parsing: value).map { $0.idle > 0 && $0.interval > 0 && $0.probes >= 1 } ?? false) == false {
                throw c.error("option keepalive is IDLE,INTERVAL,PROBES, like 1s,1s,3, or off", at: vcol)
            }
            if key == "sysctl" {
                // Both sides must be there: `net.KEY=` has no value (split's default drops the empty side, and
                // reading it trapped: found by fuzzing, Fuzz/regressions/case/sysctl-empty-value.case).
                let parts = value.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, parts[0].hasPrefix("net."), parts[0].count > 4, !parts[1].isEmpty else {
                    throw c.error("option sysctl is net.KEY=VALUE", at: vcol)
                }
                file.options["sysctl " + parts[0]] = String(parts[1])
            } else {
                file.options[key] = value
            }
            if !c.atEnd { throw c.error("unexpected text after the option") }
            return nil
        case "<":
            return .inject(try parseSegment(&c, expectation: false))
        case ">":
            if c.peekChar() == "n" {
                let save = c.pos
                if let (w, _) = c.word(), w == "none" {
                    if !c.atEnd { throw c.error("unexpected text after '> none'") }
                    return .expectNone
                }
                c.pos = save
            }
            return .expectSegment(try parseSegment(&c, expectation: true))
        case "state":
            let (s, scol) = try c.expectWord("a state name")
            guard let state = TCPState(name: s) else {
                throw c.error("unknown state '\(s)'; states are \(TCPState.allCases.map(\.rawValue).joined(separator: ", "))", at: scol)
            }
            if !c.atEnd { throw c.error("unexpected text after the state") }
            return .state(state)
        case "wait":
            let (d, dcol) = try c.expectWord("a duration such as 200ms")
            guard let secs = Durations.seconds(d) else { throw c.error("a duration is like 200ms or 1s", at: dcol) }
            return .wait(secs)
        default:
            guard calls.contains(first) else {
                throw c.error("expected a call (\(calls.sorted().joined(separator: ", "))), '<', '>', 'state', 'wait' or 'option', found '\(first)'", at: col)
            }
            var args: [String] = []
            var result: ResultSpec?
            while let (w, wcol) = c.word() {
                if w == "=" {
                    let (v, vcol) = try c.expectWord("a result")
                    guard let n = Int(v) else { throw c.error("a result is a number, e.g. '= 10' or '= -1 ECONNRESET'", at: vcol) }
                    var e: ErrnoSpec?
                    if let (en, ecol) = c.word() {
                        if en == "*" {
                            e = .any
                        } else if let code = Errno.value(en) {
                            e = .code(code)
                        } else {
                            throw c.error("unknown errno '\(en)'; write a name such as ECONNRESET, or * for any", at: ecol)
                        }
                    }
                    if n < 0, e == nil { throw c.error("a failed call names its errno: '= -1 ECONNRESET'", at: vcol) }
                    result = ResultSpec(value: n, errno: e)
                    break
                }
                args.append(w)
                _ = wcol
            }
            try checkCall(first, args, &c, col: col)
            return .call(socketCall(first, args), expect: result)
        }
    }

    static func checkCall(_ name: String, _ args: [String], _ c: inout Cursor, col: Int) throws {
        let want: ClosedRange<Int> = switch name {
        case "listen": 0...1
        case "send", "recv", "shutdown": 1...1
        case "setsockopt": 2...2
        default: 0...0
        }
        guard want.contains(args.count) else { throw c.error("'\(name)' takes \(want.lowerBound == want.upperBound ? "\(want.lowerBound)" : "\(want.lowerBound) to \(want.upperBound)") argument(s), got \(args.count)", at: col) }
        if ["send", "recv"].contains(name), Int(args[0]).map({ $0 >= 0 }) != true { throw c.error("'\(name)' takes a byte count", at: col) }
        if name == "listen", let a = args.first, Int32(a) == nil { throw c.error("'listen' takes a backlog", at: col) }
        if name == "shutdown", !["rd", "wr", "rdwr"].contains(args[0]) { throw c.error("'shutdown' takes rd, wr or rdwr", at: col) }
        if name == "setsockopt", Int32(args[1]) == nil { throw c.error("setsockopt NAME VALUE takes a number", at: col) }
    }

    /// The call `checkCall` accepted, typed.
    static func socketCall(_ name: String, _ args: [String]) -> SocketCall {
        switch name {
        case "listen": .listen(backlog: args.first.flatMap(Int32.init) ?? defaultBacklog)
        case "connect": .connect
        case "accept": .accept
        case "send": .send(Int(args[0])!)
        case "recv": .recv(Int(args[0])!)
        case "shutdown": .shutdown(SocketCall.ShutdownHow(rawValue: args[0])!)
        case "close": .close
        case "abort": .abort
        default: .setsockopt(args[0], Int32(args[1])!)
        }
    }

    static func flags(_ s: String, _ c: Cursor, col: Int) throws -> ControlBits {
        if s == "none" { return [] }
        var f = ControlBits()
        for ch in s {
            switch ch {
            case "S": f.insert(.syn)
            case "F": f.insert(.fin)
            case "R": f.insert(.rst)
            case "P": f.insert(.psh)
            case "U": f.insert(.urg)
            case "E": f.insert(.ece)
            case "W": f.insert(.cwr)
            case ".": f.insert(.ack)
            default: throw c.error("'\(ch)' is not a flag; flags are S F R P U E W and '.' for ACK", at: col)
            }
        }
        return f
    }

    static func number<T: FixedWidthInteger>(_ s: String, _ c: Cursor, col: Int, _ what: String, wildcard: Bool) throws -> Expect<T> {
        if s == "*" {
            guard wildcard else { throw c.error("'*' is for expected segments; an injected segment needs a value for \(what)", at: col) }
            return .any
        }
        guard let v = T(s) else { throw c.error("\(what) must be a number\(wildcard ? " or *" : ""), found '\(s)'", at: col) }
        return .value(v)
    }

    /// The most text one segment can carry: 65535 octets of IPv4 datagram less its 20-octet header and TCP's.
    public static let maxText: UInt32 = 65495

    /// A number for a 16-bit header field, kept as UInt32 like the model's values.
    static func field16(_ s: String, _ c: Cursor, col: Int, _ what: String, wildcard: Bool) throws -> Expect<UInt32> {
        let v: Expect<UInt32> = try number(s, c, col: col, what, wildcard: wildcard)
        if case .value(let x) = v, x > 65535 { throw c.error("\(what) is a 16-bit field: at most 65535, not \(x)", at: col) }
        return v
    }

    static func parseSegment(_ c: inout Cursor, expectation: Bool) throws -> SegmentSpec {
        let (fl, fcol) = try c.expectWord("flags such as S, S., ., P., F., R")
        let f = try flags(fl, c, col: fcol)
        let (range, rcol) = try c.expectWord("SEQ:END(LEN)")
        // SEQ:END(LEN)
        let parts = range.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let open = parts[1].firstIndex(of: "("), parts[1].hasSuffix(")") else {
            throw c.error("expected SEQ:END(LEN), e.g. 1:11(10), found '\(range)'", at: rcol)
        }
        let seq: Expect<UInt32> = try number(parts[0], c, col: rcol, "SEQ", wildcard: expectation)
        let end: Expect<UInt32> = try number(String(parts[1][..<open]), c, col: rcol, "END", wildcard: expectation)
        let len: Expect<UInt32> = try number(String(parts[1][parts[1].index(after: open)...].dropLast()), c, col: rcol, "LEN", wildcard: expectation)
        if case .value(let s) = seq, case .value(let e) = end, case .value(let l) = len, s &+ l != e {
            throw c.error("END must be SEQ+LEN (\(s)+\(l) = \(s &+ l), not \(e))", at: rcol)
        }
        // A frame carries at most an IP datagram of 65535 octets: 65495 of text after the two 20-octet headers
        // (the link's MTU limits it further). Anything more is not a segment at all, and building it would not end well.
        if case .value(let l) = len, l > CaseParser.maxText {
            throw c.error("LEN \(l) is more text than one segment can carry (at most \(CaseParser.maxText) octets: an IP datagram is at most 65535 octets with its headers)", at: rcol + parts[0].count + 1 + parts[1].distance(from: parts[1].startIndex, to: open) + 1)
        }
        var seg = SegmentSpec(flags: f, seq: seq, length: len, ack: nil, window: nil, urgent: nil, options: nil, moreOptions: false)
        while let ch = c.peekChar() {
            if ch == "<" {
                let (text, ocol) = try c.bracket("<", ">")
                (seg.options, seg.moreOptions) = try parseOptions(text, c, col: ocol, expectation: expectation)
                continue
            }
            if ch == "[" {
                let (text, mcol) = try c.bracket("[", "]")
                guard !expectation else { throw c.error("[...] modifiers malform injected segments; expectations take none", at: mcol - 1) }
                let w = text.split(separator: " ").map(String.init)
                switch w.first {
                case "bad-checksum": seg.badChecksum = true
                case "doff":
                    guard w.count == 2, let v = UInt8(w[1]), v < 16 else { throw c.error("[doff N] takes 0 to 15", at: mcol) }
                    seg.dataOffset = v
                case "reserved":
                    guard w.count == 2, let v = UInt8(w[1]), v < 16 else { throw c.error("[reserved N] takes 0 to 15", at: mcol) }
                    seg.reserved = v
                case "odd-options":
                    let kinds = OptionOddity.written.map(\.description)
                    guard w.count == 2, let o = OptionOddity.written.first(where: { $0.description == w[1] }) else {
                        throw c.error("[odd-options KIND] takes one of \(kinds.joined(separator: ", "))", at: mcol)
                    }
                    seg.oddity = o
                default: throw c.error("unknown modifier '[\(text)]'; modifiers are [bad-checksum], [doff N], [reserved N], [odd-options KIND]", at: mcol)
                }
                continue
            }
            let (key, kcol) = try c.expectWord("ack, win, urg, <options> or [modifier]")
            let (val, vcol) = try c.expectWord("a value for \(key)")
            switch key {
            case "ack":
                guard f.contains(.ack) || expectation else { throw c.error("'ack' needs the ACK flag ('.') on the segment", at: kcol) }
                seg.ack = try number(val, c, col: vcol, "ack", wildcard: expectation)
            // 16-bit fields on the wire (a window is written as sent, unscaled).
            case "win": seg.window = try field16(val, c, col: vcol, "win", wildcard: expectation)
            case "urg": seg.urgent = try field16(val, c, col: vcol, "urg", wildcard: expectation)
            default: throw c.error("expected ack, win, urg, <options> or [modifier], found '\(key)'", at: kcol)
            }
        }
        if !expectation, f.contains(.ack), seg.ack == nil { throw c.error("a segment with ACK needs 'ack N'", at: fcol) }
        return seg
    }

    static func parseOptions(_ text: String, _ c: Cursor, col: Int, expectation: Bool) throws -> ([OptionSpec], Bool) {
        var out: [OptionSpec] = []
        var more = false
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
        for (k, item) in items.enumerated() {
            let w = item.split(separator: " ").map(String.init)
            switch w.first {
            case "...":
                guard expectation, k == items.count - 1 else { throw c.error("'...' ends the options of an expected segment", at: col) }
                more = true
            case "mss": guard w.count == 2 else { throw c.error("mss N", at: col) }
                out.append(.mss(try number(w[1], c, col: col, "mss", wildcard: expectation)))
            case "wscale": guard w.count == 2 else { throw c.error("wscale N", at: col) }
                out.append(.wscale(try number(w[1], c, col: col, "wscale", wildcard: expectation)))
            case "sackOK": out.append(.sackOK)
            case "nop": out.append(.nop)
            case "eol": out.append(.eol)
            case "TS":
                guard w.count == 5, w[1] == "val", w[3] == "ecr" else { throw c.error("TS val N ecr N", at: col) }
                let val: Expect<UInt32> = try number(w[2], c, col: col, "TS val", wildcard: expectation)
                // An injected `ecr *` echoes the target's last TSval.
                let ecr: Expect<UInt32> = w[4] == "*" ? .any : try number(w[4], c, col: col, "TS ecr", wildcard: expectation)
                out.append(.timestamps(val: val, ecr: ecr))
            case "sack":
                var blocks: [UInt32] = []
                for b in w.dropFirst() {
                    let p = b.split(separator: ":")
                    guard p.count == 2, let l = UInt32(p[0]), let r = UInt32(p[1]) else { throw c.error("sack L:R L:R ...", at: col) }
                    blocks += [l, r]
                }
                out.append(.sack(blocks))
            case "raw":
                guard !expectation, w.count == 2, w[1].count % 2 == 0 else { throw c.error("raw HEX writes option bytes verbatim (injected segments only)", at: col) }
                var bytes: [UInt8] = []
                var s = Substring(w[1])
                while !s.isEmpty {
                    guard let b = UInt8(s.prefix(2), radix: 16) else { throw c.error("raw takes hex bytes", at: col) }
                    bytes.append(b)
                    s = s.dropFirst(2)
                }
                out.append(.raw(bytes))
            default:
                throw c.error("unknown option '\(item)'; options are mss, wscale, sackOK, TS val V ecr E, sack L:R, nop, eol, raw HEX\(expectation ? ", ..." : "")", at: col)
            }
        }
        return (out, more)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs — what Foundation's `.whitespaces` trims (Unicode Zs and
    /// U+0009), scalar by scalar as it does — in Swift: Foundation's goes through NSString, a fifth of a parse.
    func trimmingSpaces() -> String {
        func space(_ u: Unicode.Scalar) -> Bool { u == " " || u == "\t" || u.properties.generalCategory == .spaceSeparator }
        let scalars = Substring(self).unicodeScalars
        guard let first = scalars.firstIndex(where: { !space($0) }), let last = scalars.lastIndex(where: { !space($0) }) else { return "" }
        return String(scalars[first...last])
    }
}
