import Core
/// Parses citation text: references separated by `;`, each a document followed by optional `§section`, `p.N`
/// and a quoted phrase. Documents: `RFC N`, `erratum N`, `linux NAME` (a kernel function or sysctl), `pytcp NAME`,
/// `rfc-gap NAME` (a gap in the RFCs the spec fills).
enum CitationParser {
    /// Bare words that state a requirement's level where Appendix B gives it no ID.
    static let levelWords: [String: RequirementLevel] = ["MUST": .must, "MUST-NOT": .mustNot, "SHOULD": .should, "SHOULD-NOT": .shouldNot, "MAY": .may]

    struct Failure: Error {
        var message: String
        var offset: Int
    }

    static func parse(_ text: String) -> Result<[CitationRef], Failure> {
        let s = Array(text.unicodeScalars)
        if s.allSatisfy({ $0 == " " || $0 == "\t" }) {
            return .failure(Failure(message: "empty citation: name the RFC section (and page for RFC 793) or the stack behaviour", offset: 0))
        }
        var refs: [CitationRef] = []
        var start = 0
        var inQuote = false
        var parts: [(Int, [Unicode.Scalar])] = []
        for (k, c) in s.enumerated() {
            if c == "\"" { inQuote.toggle() }
            if c == ";" && !inQuote {
                parts.append((start, Array(s[start..<k])))
                start = k + 1
            }
        }
        if inQuote { return .failure(Failure(message: "unterminated quote in citation", offset: s.count)) }
        parts.append((start, Array(s[start..<s.count])))
        for (off, part) in parts {
            switch parseRef(part, base: off) {
            case .success(let r): refs.append(r)
            case .failure(let f): return .failure(f)
            }
        }
        return .success(refs)
    }

    private static func words(_ part: [Unicode.Scalar], base: Int) -> [(Int, String)] {
        var out: [(Int, String)] = []
        var k = 0
        while k < part.count {
            if part[k] == " " || part[k] == "\t" || part[k] == "," {
                k += 1
                continue
            }
            let st = k
            if part[k] == "\"" {
                k += 1
                while k < part.count, part[k] != "\"" { k += 1 }
                k = min(k + 1, part.count)
            } else {
                while k < part.count, part[k] != " ", part[k] != "\t", part[k] != "," { k += 1 }
            }
            var v = String.UnicodeScalarView()
            v.append(contentsOf: part[st..<k])
            out.append((base + st, String(v)))
        }
        return out
    }

    private static func parseRef(_ part: [Unicode.Scalar], base: Int) -> Result<CitationRef, Failure> {
        var w = words(part, base: base)
        guard !w.isEmpty else { return .failure(Failure(message: "empty reference between ';'", offset: base)) }
        var doc: String
        let first = w.removeFirst()
        let upper = first.1.uppercased()
        // `rfc-gap NAME` (a gap the spec fills) is a source of its own, not an RFC number.
        if upper == "RFC" || (upper.hasPrefix("RFC") && upper != "RFC-GAP") {
            var num = String(first.1.dropFirst(3))
            if num.isEmpty {
                guard !w.isEmpty else { return .failure(Failure(message: "RFC needs a number", offset: first.0)) }
                num = w.removeFirst().1
            }
            guard !num.isEmpty, num.allSatisfy(\.isNumber) else {
                return .failure(Failure(message: "expected an RFC number, found '\(num)'", offset: first.0))
            }
            doc = "RFC \(num)"
        } else if upper == "ERRATUM" || upper == "ERRATA" {
            guard let n = w.first, n.1.allSatisfy(\.isNumber) else {
                return .failure(Failure(message: "erratum needs its ID number", offset: first.0))
            }
            w.removeFirst()
            doc = "erratum \(n.1)"
        } else if ["LINUX", "PYTCP", "FREEBSD", "POSIX", "RFC-GAP"].contains(upper) {
            guard let n = w.first, !n.1.hasPrefix("\"") else {
                return .failure(Failure(message: "\(first.1) needs the function, sysctl or document it cites", offset: first.0))
            }
            w.removeFirst()
            doc = "\(first.1.lowercased()) \(n.1)"
        } else {
            return .failure(Failure(message: "unknown citation source '\(first.1)'; use RFC N, erratum N, linux NAME, pytcp NAME, posix NAME or rfc-gap NAME", offset: first.0))
        }
        var ref = CitationRef(document: doc)
        for (off, word) in w {
            if word.hasPrefix("§") {
                let sec = String(word.dropFirst())
                guard !sec.isEmpty, sec.allSatisfy({ $0.isNumber || $0 == "." || $0.isLetter }) else {
                    return .failure(Failure(message: "malformed section '\(word)'", offset: off))
                }
                ref.section = sec
            } else if word.hasPrefix("p.") {
                guard let p = Int(word.dropFirst(2)), p > 0 else {
                    return .failure(Failure(message: "malformed page '\(word)', expected p.N", offset: off))
                }
                ref.page = p
            } else if let level = CitationParser.levelWords[word] {
                // A requirement the RFC states in BCP 14 words without an Appendix B ID ("SHOULD first check").
                guard doc.hasPrefix("RFC ") else {
                    return .failure(Failure(message: "a requirement level (\(word)) belongs to an RFC reference", offset: off))
                }
                ref.level = level
            } else if let id = RequirementID(word) {
                // Appendix B's IDs are RFC 9293's own numbering: a MUST-n of another document is not this one.
                guard doc == "RFC 9293" else {
                    return .failure(Failure(message: "requirement ID \(word) is RFC 9293's (Appendix B): cite it in an RFC 9293 reference", offset: off))
                }
                ref.requirements.append(id)
            } else if word.hasPrefix("\"") {
                ref.quote = String(word.dropFirst().dropLast())
            } else {
                // Bare words are a note, e.g. `Figure 8 line 6`.
                ref.quote = (ref.quote.map { $0 + " " } ?? "") + word
            }
        }
        if doc == "RFC 793", ref.page == nil {
            return .failure(Failure(message: "RFC 793 citations need a page (p.N): the 1981 text is cited by page", offset: base))
        }
        return .success(ref)
    }
}
