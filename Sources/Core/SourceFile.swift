/// A spec source file held in memory, with the line table diagnostics need.
///
/// Bytes that are not valid UTF-8 are replaced (and reported by the lexer) so that no input can crash the reader.
public struct SourceFile: Sendable {
    public let path: String
    public let text: String
    /// The text as Unicode scalars: the lexer indexes these, and columns count them.
    package let scalars: [Unicode.Scalar]
    /// Scalar offset where each line starts.
    package let lineStarts: [Int]

    public init(path: String, bytes: [UInt8]) {
        self.init(path: path, text: String(decoding: bytes, as: UTF8.self))
    }

    public init(path: String, text: String) {
        self.path = path
        self.text = text
        self.scalars = Array(text.unicodeScalars)
        var starts = [0]
        for (i, s) in scalars.enumerated() where s == "\n" { starts.append(i + 1) }
        self.lineStarts = starts
    }

    public func location(ofOffset offset: Int) -> SourceLocation {
        // Binary search the line table: spec files are small but error-heavy inputs can be large.
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return SourceLocation(file: path, line: lo + 1, column: offset - lineStarts[lo] + 1)
    }

    /// The text of a 1-based line, without its newline.
    public func lineText(_ line: Int) -> String {
        guard line >= 1, line <= lineStarts.count else { return "" }
        let start = lineStarts[line - 1]
        var end = line < lineStarts.count ? lineStarts[line] - 1 : scalars.count
        if end > start, end <= scalars.count, scalars[end - 1] == "\r" { end -= 1 }
        guard end > start else { return "" }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars[start..<min(end, scalars.count)])
        return String(s)
    }
}

/// `file:line:col`, 1-based.
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
        (a.file, a.line, a.column) < (b.file, b.line, b.column)
    }
}
