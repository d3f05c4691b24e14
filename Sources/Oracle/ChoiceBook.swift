import Core

/// What a stack chose where RFC 9293 lets it choose, as observed: each choice bound by the first step that tells
/// the alternatives apart, then every later such step checked against the binding. Pure; one per run (the stack's
/// choices are the stack's, whichever connection shows them).
public struct ChoiceBook: Sendable {
    public typealias Alternative = ChoiceAlternative
    public typealias Record = ChoiceRecord

    public private(set) var records: [Record] = []

    public init() {}

    /// Registers a choice the run may observe (reports list it even when nothing tells its alternatives apart).
    public mutating func declare(name: String, title: String, source: String, requirement: String?, taken: String, other: String, perStep: Bool = false) {
        guard !records.contains(where: { $0.name == name }) else { return }
        var r = Record(name: name, title: title, source: source, requirement: requirement, taken: taken, other: other)
        if perStep { r.perStep = true }
        records.append(r)
    }

    public func binding(_ name: String) -> Record? { records.first { $0.name == name } }

    /// A step decided by a rule that explains choice `name` without binding it (`ChoiceSet.Bound.nonBinding`)
    /// took the other alternative: whether that alternative explains it — before the binding and when bound to
    /// it, not when bound to the profile's (the step is then the profile's to judge). It binds nothing.
    /// `recording` false (a replay): nothing is counted.
    public mutating func explainsOther(_ name: String, recording: Bool = true) -> Bool {
        guard let i = records.firstIndex(where: { $0.name == name }) else { return false }
        switch records[i].bound {
        case nil:
            if recording { records[i].beforeBinding = (records[i].beforeBinding ?? 0) + 1 }
            return true
        case .other?:
            if recording { records[i].consistent += 1 }
            return true
        case .taken?:
            return false
        }
    }

    /// A step showed alternative `alt` of choice `name` at `place`: the first binds it; a later one that disagrees
    /// is returned as the record it contradicts.
    /// `recording` false (a replay of a case already counted): compare with the binding only, never bind or count.
    /// `binding` false (a state that does not bind the choice, `ChoiceSet.Bound.binds(in:)`): before the binding
    /// either alternative passes and nothing is bound; after it the step is held to it like any other.
    public mutating func observe(_ name: String, _ alt: Alternative, at place: String, recording: Bool = true, binding: Bool = true) -> Record? {
        guard let i = records.firstIndex(where: { $0.name == name }) else { return nil }
        if !recording { return records[i].bound.map { $0 == alt ? nil : records[i] } ?? nil }
        if records[i].bound == nil, !binding {
            records[i].beforeBinding = (records[i].beforeBinding ?? 0) + 1
            return nil
        }
        guard let b = records[i].bound else {
            records[i].bound = alt
            records[i].firstSeen = place
            records[i].consistent = 1
            return nil
        }
        if b == alt {
            records[i].consistent += 1
            return nil
        }
        records[i].inconsistent += 1
        if records[i].inconsistentAt.count < 3 { records[i].inconsistentAt.append(place) }
        return records[i]
    }
}
