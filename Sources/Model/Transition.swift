import Spec

/// A segment the model sends, with the rule that produced it and which fields are still symbolic.
public struct Output: Hashable, Sendable {
    public var segment: Segment
    /// Index into `CompiledSpec.rules`.
    public var rule: Int
    /// SEQ is ISS + k where the target's ISS is not yet observed: compare offsets, then bind.
    public var seqSymbolic: Bool
    /// WND is the target's receive window, not yet observed.
    public var windowSymbolic: Bool
}

/// Fixed-capacity list stored inline, so that a transition allocates nothing.
public struct SmallList<Element: Sendable>: Sendable, RandomAccessCollection {
    @usableFromInline var storage: InlineArray<4, Element?> = .init(repeating: nil)
    public private(set) var count = 0
    /// Elements past the inline capacity (none with the shipped specs; kept so nothing is ever lost).
    @usableFromInline var overflow: [Element]?

    public init() {}

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(i: Int) -> Element {
        get { i < 4 ? storage[i]! : overflow![i - 4] }
        set {
            if i < 4 { storage[i] = newValue } else { overflow![i - 4] = newValue }
        }
    }

    public mutating func append(_ e: Element) {
        if count < 4 { storage[count] = e } else { overflow = (overflow ?? []) + [e] }
        count += 1
    }

    public mutating func remove(at i: Int) {
        for k in i..<(count - 1) { self[k] = self[k + 1] }
        if count > 4 { overflow!.removeLast() } else { storage[count - 1] = nil }
        count -= 1
    }
}

/// What one input did: the outputs to compare with a real stack, and the rules that decided it.
public struct Transition: Sendable {
    public var from: Int
    public var to: Int
    public var event: EventKind
    /// The input class (cell of the (from, event) table) and its chain (index into `CompiledSpec.chains`).
    public var cell: Int
    public var chain: Int
    public var outputs = SmallList<Output>()
    /// Indices into `CompiledSpec.strings`.
    public var signals = SmallList<Int>()
    public var reply: Int?
    /// Octets handed to the user by RECEIVE.
    public var delivered: UInt32 = 0
    /// Timers started and stopped (bit per `TimerName.rawValue`).
    public var timersStarted: UInt8 = 0
    public var timersStopped: UInt8 = 0

    /// True when the input class is one the compiler proved impossible (the model took no action).
    public var isImpossible: Bool { chain < 0 }
}
