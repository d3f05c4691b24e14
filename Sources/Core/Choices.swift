/// What a stack chose where RFC 9293 lets it choose (`Oracle.ChoiceBook` keeps them; reports show them).
public enum ChoiceAlternative: String, Codable, Sendable {
    /// The alternative the profile's own rules take.
    case taken
    /// The other one, which the choice's overlay profile states.
    case other
}

public struct ChoiceRecord: Codable, Sendable {
    public var name: String
    public var title: String
    public var source: String
    public var requirement: String?
    public var taken: String
    public var other: String
    /// Nil until a step tells the alternatives apart.
    public var bound: ChoiceAlternative?
    public var firstSeen: String?
    /// Steps that agreed with the binding (the first included), and those that did not.
    public var consistent = 0
    public var inconsistent = 0
    /// Where the first few inconsistent steps were.
    public var inconsistentAt: [String] = []
    /// Steps that do not bind the choice (in states that do not, or of rules that do not), seen before it was
    /// bound: accepted under either alternative.
    public var beforeBinding: Int?
    /// Never bound: judged per step (`ChoiceCatalog.Choice.perStep`).
    public var perStep: Bool?

    public init(name: String, title: String, source: String, requirement: String?, taken: String, other: String) {
        self.name = name
        self.title = title
        self.source = source
        self.requirement = requirement
        self.taken = taken
        self.other = other
    }

    /// `implements RFC 5961 §3 blind-reset protection: no (resets on any in-window RST), first seen in …`.
    public var description: String {
        guard let bound else {
            if perStep == true {
                let n = beforeBinding ?? 0
                return "\(title): judged per step, never bound (\(n) step\(n == 1 ? "" : "s") told the alternatives apart, each judged under either)"
            }
            if let n = beforeBinding, n > 0 { return "\(title): not bound (\(n) step\(n == 1 ? "" : "s") told the alternatives apart, none in a state or of a rule that binds it; each judged under either alternative)" }
            return "\(title): not observed (no step told the alternatives apart)"
        }
        var s = "\(title): \(bound == .taken ? taken : other), first seen \(firstSeen ?? "?"); \(consistent) step\(consistent == 1 ? "" : "s") agree"
        if inconsistent > 0 { s += ", \(inconsistent) INCONSISTENT (\(inconsistentAt.joined(separator: "; ")))" }
        if let n = beforeBinding, n > 0 { s += "; \(n) earlier step\(n == 1 ? "" : "s") that do not bind it (their state or rule), judged under either alternative" }
        return s
    }
}

