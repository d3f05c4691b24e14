import Foundation

/// The subset of TOML that target descriptions use, read with the line and column of every key and value so
/// that a bad file is reported where it is wrong: `[table]` headers, `key = value` with bare or quoted keys,
/// basic and literal strings, integers, booleans, one-line arrays and inline tables of those, comments.
/// Anything else (dotted keys, multi-line strings, dates, floats) is an error at its position.
public struct TOMLReader {
    public struct Position: Hashable, Sendable {
        public var line: Int
        public var column: Int
        public init(line: Int, column: Int) {
            self.line = line
            self.column = column
        }
    }

    public indirect enum Value: Sendable {
        case string(String)
        case integer(Int)
        case bool(Bool)
        case array([Located])
        case table([(key: String, value: Located)])

        public var kind: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .bool: "a boolean"
            case .array: "an array"
            case .table: "an inline table"
            }
        }
    }

    public struct Located: Sendable {
        public var value: Value
        public var at: Position
    }

    public struct Entry: Sendable {
        public var key: String
        public var keyAt: Position
        public var value: Located
    }

    public struct Table: Sendable {
        public var name: String
        public var at: Position
        public var entries: [Entry]
        /// `[[name]]`: one element of an array of tables (the name repeats).
        public var isArrayElement = false
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var file: String
        public var at: Position
        public var message: String
        public init(file: String, at: Position, message: String) {
            self.file = file
            self.at = at
            self.message = message
        }
        public var description: String { "\(file):\(at.line):\(at.column): error: \(message)" }
    }

    let file: String
    let chars: [Character]
    var i = 0
    var line = 1
    var lineStart = 0

    /// The tables in file order; the keys before the first header form the table named "".
    public static func read(_ text: String, file: String) throws(Failure) -> [Table] {
        var r = TOMLReader(file: file, chars: Array(text))
        return try r.document()
    }

    init(file: String, chars: [Character]) {
        self.file = file
        self.chars = chars
    }

    var here: Position { Position(line: line, column: i - lineStart + 1) }
    var peek: Character? { i < chars.count ? chars[i] : nil }

    func fail(_ message: String, at: Position? = nil) -> Failure { Failure(file: file, at: at ?? here, message: message) }

    mutating func skipSpaces() {
        while let c = peek, c == " " || c == "\t" { i += 1 }
    }

    /// Spaces, then a comment or nothing, then the end of the line (or file).
    mutating func endOfLine() throws(Failure) {
        skipSpaces()
        if peek == "#" { while let c = peek, c != "\n" { i += 1 } }
        if peek == "\r" { i += 1 }
        guard let c = peek else { return }
        guard c == "\n" else { throw fail("expected the end of the line, found '\(c)'") }
        i += 1
        line += 1
        lineStart = i
    }

    mutating func document() throws(Failure) -> [Table] {
        var tables = [Table(name: "", at: Position(line: 1, column: 1), entries: [])]
        var seen: Set<String> = [""]
        var arrays: Set<String> = []
        while i < chars.count {
            skipSpaces()
            guard let c = peek else { break }
            if c == "#" || c == "\n" || c == "\r" {
                try endOfLine()
                continue
            }
            if c == "[" {
                let at = here
                i += 1
                let array = peek == "["
                if array { i += 1 }
                skipSpaces()
                let name = try key()
                skipSpaces()
                guard peek == "]" else { throw fail("expected '\(array ? "]]" : "]")' after the table name") }
                i += 1
                if array {
                    guard peek == "]" else { throw fail("expected ']]' after the table name") }
                    i += 1
                    guard !seen.contains(name) else { throw fail("[[\(name)]] follows a table [\(name)]", at: at) }
                    arrays.insert(name)
                } else {
                    guard !arrays.contains(name), seen.insert(name).inserted else { throw fail("table [\(name)] is defined twice", at: at) }
                }
                tables.append(Table(name: name, at: at, entries: [], isArrayElement: array))
                try endOfLine()
                continue
            }
            let e = try keyValue(among: tables[tables.count - 1].entries.map(\.key))
            tables[tables.count - 1].entries.append(e)
            try endOfLine()
        }
        return tables
    }

    /// `key = value`, the key new among `keys`.
    mutating func keyValue(among keys: [String]) throws(Failure) -> Entry {
        let keyAt = here
        let k = try key()
        skipSpaces()
        guard peek == "=" else { throw fail("expected '=' after key '\(k)'") }
        i += 1
        skipSpaces()
        let v = try value()
        if keys.contains(k) { throw fail("key '\(k)' is set twice", at: keyAt) }
        return Entry(key: k, keyAt: keyAt, value: v)
    }

    mutating func key() throws(Failure) -> String {
        guard let c = peek else { throw fail("expected a key") }
        if c == "\"" || c == "'" {
            guard case .string(let s) = try value().value else { throw fail("expected a key") }
            return s
        }
        var k = ""
        while let c = peek, c.isLetter || c.isNumber || c == "_" || c == "-" {
            k.append(c)
            i += 1
        }
        if k.isEmpty { throw fail("expected a key, found '\(c)'") }
        if peek == "." { throw fail("dotted keys are not used in this file; quote the key (\"\(k).…\")") }
        return k
    }

    mutating func value() throws(Failure) -> Located {
        let at = here
        guard let c = peek, c != "\n" else { throw fail("expected a value") }
        switch c {
        case "\"":
            i += 1
            if peek == "\"", i + 1 < chars.count, chars[i + 1] == "\"" { throw fail("multi-line strings are not used in this file") }
            var s = ""
            while true {
                guard let d = peek, d != "\n" else { throw fail("unterminated string", at: at) }
                i += 1
                if d == "\"" { break }
                if d == "\\" {
                    guard let e = peek else { throw fail("unterminated string", at: at) }
                    i += 1
                    switch e {
                    case "n": s.append("\n")
                    case "t": s.append("\t")
                    case "\\": s.append("\\")
                    case "\"": s.append("\"")
                    default: throw fail("unknown escape '\\\(e)'", at: Position(line: line, column: i - lineStart - 1))
                    }
                } else {
                    s.append(d)
                }
            }
            return Located(value: .string(s), at: at)
        case "'":
            i += 1
            var s = ""
            while true {
                guard let d = peek, d != "\n" else { throw fail("unterminated string", at: at) }
                i += 1
                if d == "'" { break }
                s.append(d)
            }
            return Located(value: .string(s), at: at)
        case "[":
            i += 1
            var items: [Located] = []
            while true {
                skipSpaces()
                if peek == "]" {
                    i += 1
                    break
                }
                if peek == "\n" || peek == nil { throw fail("arrays are written on one line here: expected ']'", at: at) }
                items.append(try value())
                skipSpaces()
                if peek == "\n" || peek == nil { throw fail("arrays are written on one line here: expected ']'", at: at) }
                if peek == "," { i += 1 } else if peek != "]" { throw fail("expected ',' or ']' in the array") }
            }
            return Located(value: .array(items), at: at)
        case "{":
            i += 1
            var entries: [(key: String, value: Located)] = []
            while true {
                skipSpaces()
                if peek == "}" {
                    i += 1
                    break
                }
                let e = try keyValue(among: entries.map(\.key))
                entries.append((e.key, e.value))
                skipSpaces()
                if peek == "," { i += 1 } else if peek != "}" { throw fail("expected ',' or '}' in the inline table") }
            }
            return Located(value: .table(entries), at: at)
        default:
            var word = ""
            while let d = peek, !(d == " " || d == "\t" || d == "," || d == "]" || d == "}" || d == "#" || d == "\n" || d == "\r") {
                word.append(d)
                i += 1
            }
            if word == "true" { return Located(value: .bool(true), at: at) }
            if word == "false" { return Located(value: .bool(false), at: at) }
            if let n = Int(word.replacingOccurrences(of: "_", with: "")) { return Located(value: .integer(n), at: at) }
            throw fail("expected a value (a \"string\", an integer, true/false, [array] or {table}), found '\(word)'", at: at)
        }
    }
}
