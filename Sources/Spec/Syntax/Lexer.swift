import Core
/// Tokens of the spec language. Newlines end statements except inside parentheses.
public enum TokenKind: Equatable, Sendable {
    case name(String)
    case number(UInt32)
    /// A number with a unit of time (`200ms`, `1.5s`, `4m`, `1h`: `Durations`), in seconds: the bounds of `timing` lines.
    case duration(Double)
    case string(String)
    case punct(String)
    /// The raw rest of a line after `cite`, parsed by `CitationParser`.
    case citeText(String)
    case newline
    case eof
}

public struct Token: Sendable {
    public var kind: TokenKind
    public var offset: Int
    public var length: Int
}

/// Turns a source file into tokens. Never fails: unexpected characters become diagnostics and are skipped.
struct Lexer {
    let file: SourceFile
    var pos = 0
    var parenDepth = 0
    /// Where the outermost open parenthesis is, and the indentation of its line: a continuation line must be
    /// indented deeper, so a forgotten ')' is reported where it was opened instead of swallowing the file.
    var parenOpen = 0
    var parenIndent = 0
    var tokens: [Token] = []
    var diagnostics: [Diagnostic] = []

    init(_ file: SourceFile) { self.file = file }

    static func tokenize(_ file: SourceFile) -> ([Token], [Diagnostic]) {
        var lx = Lexer(file)
        lx.run()
        return (lx.tokens, lx.diagnostics)
    }

    private var s: [Unicode.Scalar] { file.scalars }

    private func peek(_ k: Int = 0) -> Unicode.Scalar? {
        let i = pos + k
        return i < s.count ? s[i] : nil
    }

    private mutating func error(_ msg: String, at offset: Int) {
        diagnostics.append(Diagnostic(.syntax, msg, at: file.location(ofOffset: offset)))
    }

    private static func isIdentStart(_ c: Unicode.Scalar) -> Bool {
        (c >= "A" && c <= "Z") || (c >= "a" && c <= "z") || c == "_"
    }
    private static func isIdentBody(_ c: Unicode.Scalar) -> Bool {
        isIdentStart(c) || (c >= "0" && c <= "9")
    }
    private static func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }

    mutating func run() {
        // Invalid UTF-8 is reported wherever it is, comments and strings included (decoding made it U+FFFD).
        var lastLine = -1
        for (i, c) in s.enumerated() where c == "\u{FFFD}" {
            let loc = file.location(ofOffset: i)
            if loc.line != lastLine { diagnostics.append(Diagnostic(.encoding, "invalid UTF-8 byte sequence", at: loc)) }
            lastLine = loc.line
        }
        while let c = peek() {
            let start = pos
            switch c {
            case " ", "\t", "\r":
                pos += 1
            case "\n":
                pos += 1
                if parenDepth > 0, indentOfNextLine() <= parenIndent {
                    error("'(' is never closed", at: parenOpen)
                    parenDepth = 0
                }
                if parenDepth == 0 { emit(.newline, start) }
            case "#":
                while let d = peek(), d != "\n" { pos += 1 }
            case "\u{FFFD}":
                pos += 1
            case "\"":
                lexString()
            case _ where Lexer.isDigit(c):
                lexNumber()
            case _ where Lexer.isIdentStart(c):
                lexName()
            default:
                lexPunct()
            }
        }
        emit(.newline, pos)
        emit(.eof, pos)
    }

    private mutating func emit(_ k: TokenKind, _ start: Int) {
        tokens.append(Token(kind: k, offset: start, length: max(0, pos - start)))
    }

    private func indentOfLine(containing offset: Int) -> Int {
        var k = offset
        while k > 0, s[k - 1] != "\n" { k -= 1 }
        var n = 0
        while k + n < s.count, s[k + n] == " " || s[k + n] == "\t" { n += 1 }
        return n
    }

    /// Indentation of the next line that is neither blank nor a comment (-1 at the end of the file).
    private func indentOfNextLine() -> Int {
        var k = pos
        while k < s.count {
            var n = 0
            while k + n < s.count, s[k + n] == " " || s[k + n] == "\t" { n += 1 }
            if k + n >= s.count { return -1 }
            if s[k + n] != "\n" && s[k + n] != "#" && s[k + n] != "\r" { return n }
            while k < s.count, s[k] != "\n" { k += 1 }
            k += 1
        }
        return -1
    }

    private mutating func lexString() {
        let start = pos
        pos += 1
        var v = String.UnicodeScalarView()
        while let c = peek(), c != "\"", c != "\n" {
            v.append(c)
            pos += 1
        }
        if peek() == "\"" {
            pos += 1
        } else {
            error("unterminated string", at: start)
        }
        emit(.string(String(v)), start)
    }

    private mutating func lexNumber() {
        let start = pos
        var value: UInt64 = 0
        var overflow = false
        let hex = peek() == "0" && (peek(1) == "x" || peek(1) == "X")
        if hex {
            pos += 2
            var any = false
            while let c = peek(), let d = Lexer.hexValue(c) {
                value = value &* 16 &+ UInt64(d)
                if value > UInt64(UInt32.max) { overflow = true }
                pos += 1
                any = true
            }
            if !any { error("hexadecimal number needs digits", at: start) }
        } else {
            while let c = peek(), Lexer.isDigit(c) {
                value = value &* 10 &+ UInt64(c.value - 48)
                if value > UInt64(UInt32.max) { overflow = true }
                pos += 1
            }
        }
        // A duration: decimal digits, an optional fraction, and a unit of time run together, read as the command
        // line reads one.
        var fraction = false
        if !hex, peek() == ".", let d = peek(1), Lexer.isDigit(d) {
            var k = 2
            while let e = peek(k), Lexer.isDigit(e) { k += 1 }
            if let u = peek(k), Lexer.isIdentStart(u) {
                pos += k
                fraction = true
            }
        }
        if let c = peek(), Lexer.isIdentStart(c) {
            let unitStart = pos
            var unit = ""
            while let d = peek(), Lexer.isIdentBody(d) { unit.unicodeScalars.append(d); pos += 1 }
            let literal = String(String.UnicodeScalarView(s[start..<pos]))
            if !hex, Durations.units.contains(where: { $0.suffix == unit }), let seconds = Durations.seconds(literal) {
                emit(.duration(seconds), start)
                return
            }
            error(fraction || Durations.units.contains(where: { unit.hasPrefix($0.suffix) })
                  ? "unknown unit of time '\(unit)'; units are \(Durations.unitList)"
                  : "a number cannot run into a name; put an operator or a space between them", at: unitStart)
        }
        if overflow { error("number does not fit in 32 bits (sequence space is modulo 2^32)", at: start) }
        emit(.number(overflow ? 0 : UInt32(value)), start)
    }

    private static func hexValue(_ c: Unicode.Scalar) -> UInt32? {
        switch c {
        case "0"..."9": c.value - 48
        case "a"..."f": c.value - 87
        case "A"..."F": c.value - 55
        default: nil
        }
    }

    /// Names are dotted and hyphenated (`SND.NXT`, `SYN-RECEIVED`, `FIN-WAIT-1`, `rst.challenge-ack`). A `-` after
    /// a known variable is a minus sign instead, so the RFC's `SEG.SEQ+SEG.LEN-1` reads as it does in the RFC.
    private mutating func lexName() {
        let start = pos
        var v = String.UnicodeScalarView()
        while true {
            while let c = peek(), Lexer.isIdentBody(c) {
                v.append(c)
                pos += 1
            }
            guard let c = peek(), c == "." || c == "-", let n = peek(1), Lexer.isIdentBody(n) else { break }
            if c == "-", variableSpellings.contains(String(v)) { break }
            v.append(c)
            pos += 1
        }
        let name = String(v)
        emit(.name(name), start)
        if name == "cite" { lexCiteText() }
    }

    private mutating func lexCiteText() {
        while let c = peek(), c == " " || c == "\t" { pos += 1 }
        let start = pos
        var v = String.UnicodeScalarView()
        while let c = peek(), c != "\n" {
            // A comment may follow a citation, but `#` inside quotes is text.
            if c == "#", Lexer.quoteBalanced(v) { break }
            v.append(c)
            pos += 1
        }
        var text = String(v)
        while text.last == " " || text.last == "\t" || text.last == "\r" { text.removeLast() }
        emit(.citeText(text), start)
    }

    private static func quoteBalanced(_ v: String.UnicodeScalarView) -> Bool {
        v.filter { $0 == "\"" }.count % 2 == 0
    }

    // The punctuation, built once (a collection literal in the function body is built again for every token).
    private static let twoCharacterPunct: Set<String> = ["<-", "=<", "<=", ">=", "!=", "=="]
    private static let oneCharacterPunct: Set<Unicode.Scalar> = ["(", ")", "{", "}", ",", ";", ":", "<", ">", "=", "+", "-"]

    private mutating func lexPunct() {
        let start = pos
        if let a = peek(), let b = peek(1), Self.oneCharacterPunct.contains(a) || a == "!" {
            let pair = String(Character(a)) + String(Character(b))
            if Self.twoCharacterPunct.contains(pair) {
                pos += 2
                emit(.punct(pair == "<=" ? "=<" : (pair == "==" ? "=" : pair)), start)
                return
            }
        }
        let c = peek()!
        pos += 1
        if Self.oneCharacterPunct.contains(c) {
            if c == "(" {
                if parenDepth == 0 {
                    parenOpen = start
                    parenIndent = indentOfLine(containing: start)
                }
                parenDepth += 1
            }
            if c == ")" { parenDepth = max(0, parenDepth - 1) }
            emit(.punct(String(Character(c))), start)
        } else {
            let shown = c.properties.isWhitespace || c.value < 32 ? "U+" + String(c.value, radix: 16, uppercase: true) : "'\(Character(c))'"
            error("unexpected character \(shown)", at: start)
        }
    }
}
