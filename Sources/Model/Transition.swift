import Core
import Spec

/// A segment the model sends, with the rule that produced it and which fields are still symbolic.
public struct Output: Hashable, Sendable, BitwiseCopyable {
    public var segment: Segment
    /// Index into `CompiledSpec.rules`.
    public var rule: Int { Int(ruleIndex) }
    var ruleIndex: Int32
    /// SEQ is ISS + k where the target's ISS is not yet observed: compare offsets, then bind.
    public var seqSymbolic: Bool
    /// WND is the target's receive window, not yet observed.
    public var windowSymbolic: Bool
    /// SEQ is a constant of the rule (`<SEQ=0>`), the same in every numbering.
    public var seqConstant: Bool

    public init(segment: Segment, rule: Int, seqSymbolic: Bool, windowSymbolic: Bool, seqConstant: Bool = false) {
        self.segment = segment
        self.ruleIndex = Int32(rule)
        self.seqSymbolic = seqSymbolic
        self.windowSymbolic = windowSymbolic
        self.seqConstant = seqConstant
    }
}

/// Elements a `SmallList` can hold: plain values with a filler for unused slots.
public protocol SmallListElement: Sendable, BitwiseCopyable {
    static var filler: Self { get }
}

/// Fixed-capacity list stored inline, so that a transition allocates nothing and copies as plain bytes. The
/// compiler rejects a spec whose rules could emit more than `capacity` segments or signals for one input.
public struct SmallList<Element: SmallListElement>: Sendable, RandomAccessCollection, BitwiseCopyable {
    public static var capacity: Int { 4 }
    @usableFromInline var storage: InlineArray<4, Element> = .init(repeating: .filler)
    public private(set) var count = 0

    public init() {}

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(i: Int) -> Element {
        get { storage[i] }
        set { storage[i] = newValue }
    }

    public mutating func append(_ e: Element) {
        precondition(count < 4, "more outputs than the compiler allows")
        storage[count] = e
        count += 1
    }

    public mutating func remove(at i: Int) {
        for k in i..<(count - 1) { storage[k] = storage[k + 1] }
        count -= 1
    }
}

extension Int: SmallListElement {
    public static var filler: Int { 0 }
}

extension Output: SmallListElement {
    /// The output as it is once the endpoint's ISS, symbolic when it was computed, is adopted (`shift`: what
    /// `TCPModel.adopt(.iss)` returned).
    public func followingISS(_ shift: UInt32) -> Output {
        var o = self
        if o.seqSymbolic { o.segment.seq &+= shift }
        return o
    }

    public static var filler: Output { Output(segment: Segment(seq: 0, ctl: []), rule: 0, seqSymbolic: false, windowSymbolic: false) }
}

/// What one input did: the outputs to compare with a real stack, and the rules that decided it.
public struct Transition: Sendable, BitwiseCopyable {
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
    /// Outputs before this index were pushed (`push`): a later one does not absorb them.
    var pushed: UInt8 = 0

    /// True when the input class is one the compiler proved impossible (the model took no action).
    public var isImpossible: Bool { chain < 0 }
}
