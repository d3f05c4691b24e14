/// An RFC 9293 Appendix B requirement ID: `MUST-66`, `SHLD-31`, `MAY-12` (and the table's one `REC-1`).
/// Rules cite them; verdicts, reports and baselines name them.
public struct RequirementID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public enum Prefix: String, Sendable, CaseIterable, Codable {
        case must = "MUST", should = "SHLD", may = "MAY", recommended = "REC"
    }
    public var prefix: Prefix
    public var number: Int

    public init(_ prefix: Prefix, _ number: Int) {
        self.prefix = prefix
        self.number = number
    }

    /// Parses `MUST-66`; nil for anything else (`MUST66`, `must-1`, `SHOULD-3`).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let p = Prefix(rawValue: String(parts[0])), let n = Int(parts[1]), n > 0,
              parts[1].allSatisfy(\.isASCII), String(n) == parts[1] else { return nil }
        self.init(p, n)
    }

    public var description: String { "\(prefix.rawValue)-\(number)" }

    /// What a divergence from a rule citing this ID is: its prefix is its level (MUST-n may be a MUST NOT, and so on).
    public var divergenceClass: VerdictClass {
        switch prefix {
        case .must: .violates
        case .should, .recommended: .deviates
        case .may: .choice
        }
    }

    public static func < (a: RequirementID, b: RequirementID) -> Bool {
        let order: [Prefix] = [.must, .should, .may, .recommended]
        let x = order.firstIndex(of: a.prefix)!, y = order.firstIndex(of: b.prefix)!
        return x != y ? x < y : a.number < b.number
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = RequirementID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a requirement ID: \(text)"))
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A requirement's level, as the Appendix B columns give it.
public enum RequirementLevel: String, Sendable, CaseIterable, Codable, Comparable {
    case must = "MUST", mustNot = "MUST NOT", should = "SHOULD", shouldNot = "SHOULD NOT", may = "MAY"

    /// A MUST or MUST NOT: no alternative is permitted.
    public var isAbsolute: Bool { self == .must || self == .mustNot }

    /// Strongest first: MUST, MUST NOT, SHOULD, SHOULD NOT, MAY.
    public static func < (a: RequirementLevel, b: RequirementLevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// What a divergence from a rule at this level is.
    public var divergenceClass: VerdictClass {
        switch self {
        case .must, .mustNot: .violates
        case .should, .shouldNot: .deviates
        case .may: .choice
        }
    }
}

/// What a divergence is, as RFC 9293 decides it.
/// - `violates`: the stack breaks a MUST, or a rule whose text permits no alternative: a failure.
/// - `deviates`: the stack departs from a SHOULD: reported; a failure only under `--strict`.
/// - `choice`: the stack took an alternative the RFC permits (a MAY, a named choice): recorded, never a failure.
/// - `unspecified`: no clause decides the behaviour (the spec's own interpretation, a profile's own rule):
///   reported apart, never a failure.
public enum VerdictClass: String, Sendable, CaseIterable, Codable, Comparable {
    case violates, deviates, choice, unspecified

    public static func < (a: VerdictClass, b: VerdictClass) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Whether a divergence of this class fails a run (`strict`: deviations fail too).
    public func fails(strict: Bool) -> Bool {
        switch self {
        case .violates: true
        case .deviates: strict
        case .choice, .unspecified: false
        }
    }
}
