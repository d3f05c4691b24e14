/// One finding about a spec, in the `file:line:col: error[kind]: message` form with the source line and a caret.
public struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    /// Each check has its own kind so that tests and tools can tell them apart.
    public enum Kind: String, Sendable, CaseIterable {
        case encoding            // bytes that are not UTF-8
        case syntax              // the grammar
        case unknownName         // a state, step, classifier, value, variable or builtin that does not exist
        case duplicate           // two declarations of one name
        case type                // an expression of the wrong type, or a guard that reads data the input class does not fix
        case citation            // a rule or classifier without a citation, or a malformed one
        case profile             // profile header, extends chain, missing profile
        case overlayTarget       // `replaces X` / `override` naming something the base does not have
        case overlayShadow       // an overlay rule deciding inherited cells without saying `replaces`
        case nondeterministic    // two rules decide one cell
        case incomplete          // a cell that no rule decides
        case unreachableState    // a state no input sequence reaches from CLOSED
        case deadRule            // a rule whose guard matches no input class
        case shadowedRule        // a rule every input of which is decided by earlier steps
        case control             // a segment rule that neither drops, returns nor continues; bad `continue at`
        case io                  // files that cannot be read
    }

    public var kind: Kind
    public var location: SourceLocation?
    public var message: String
    /// The source line the location points into (filled by the loader so rendering needs no file access).
    public var sourceLine: String?
    public var notes: [String]

    public init(_ kind: Kind, _ message: String, at location: SourceLocation?, sourceLine: String? = nil, notes: [String] = []) {
        self.kind = kind
        self.message = message
        self.location = location
        self.sourceLine = sourceLine
        self.notes = notes
    }

    public var description: String { rendered }

    /// Characters of a source line shown around the caret.
    static let shownLine = 160

    /// `text` cut in the middle when longer than `max` characters (a message quoting a huge token).
    static func clip(_ text: String, _ max: Int) -> String {
        guard text.count > max else { return text }
        return String(text.prefix(max * 2 / 3)) + " … " + String(text.suffix(max / 4))
    }

    public var rendered: String {
        var out = ""
        if let loc = location { out += "\(loc): " }
        out += "error[\(kind.rawValue)]: \(Diagnostic.clip(message, 400))"
        if let line = sourceLine, let loc = location {
            // A long line (a 50 MB one-line file, say) is shown around the caret only.
            var scalars = Array(line.unicodeScalars)
            var column = max(0, loc.column - 1)
            var head = "", tail = ""
            if scalars.count > Diagnostic.shownLine {
                let from = max(0, min(column - Diagnostic.shownLine / 2, scalars.count - Diagnostic.shownLine))
                let to = min(scalars.count, from + Diagnostic.shownLine)
                if from > 0 { head = "…" }
                if to < scalars.count { tail = "…" }
                scalars = Array(scalars[from..<to])
                column -= from
            }
            var shown = String.UnicodeScalarView()
            shown.append(contentsOf: scalars)
            out += "\n    \(head)\(String(shown))\(tail)\n    \(head.isEmpty ? "" : " ")"
            // Keep tabs so the caret lines up under tab-indented sources.
            let prefix = scalars.prefix(column).map { $0 == "\t" ? "\t" : " " }.joined()
            out += prefix + "^"
        }
        for n in notes { out += "\n    note: \(n)" }
        return out
    }
}

/// Collects diagnostics; every phase reports all it finds instead of stopping at the first.
public struct DiagnosticSink: Sendable {
    public private(set) var diagnostics: [Diagnostic] = []
    public init() {}
    public var hasErrors: Bool { !diagnostics.isEmpty }
    public mutating func report(_ d: Diagnostic) { diagnostics.append(d) }
    public mutating func report(_ kind: Diagnostic.Kind, _ message: String, at loc: SourceLocation?, notes: [String] = []) {
        diagnostics.append(Diagnostic(kind, message, at: loc, notes: notes))
    }
    public mutating func append(contentsOf other: [Diagnostic]) { diagnostics.append(contentsOf: other) }
}
