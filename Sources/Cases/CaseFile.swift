import Core

/// A field of an expected segment: a value, or `*` for any.
public enum Expect<T: Hashable & Sendable>: Hashable, Sendable {
    case any
    case value(T)

    public func matches(_ v: T) -> Bool {
        switch self {
        case .any: true
        case .value(let x): x == v
        }
    }
}

/// A segment written in a case, in tcpdump/packetdrill notation with numbers relative to the ISNs.
public struct SegmentSpec: Hashable, Sendable {
    /// The 8 flag bits as named (`S.` is SYN and ACK).
    public var flags: ControlBits
    public var seq: Expect<UInt32>
    public var length: Expect<UInt32>
    public var ack: Expect<UInt32>?
    public var window: Expect<UInt32>?
    public var urgent: Expect<UInt32>?
    /// nil: not written (not checked for expectations, none sent for injections).
    public var options: [OptionSpec]?
    /// `...` after the options of an expectation: more options may follow.
    public var moreOptions: Bool
    /// Deliberate malformations of an injected segment.
    public var badChecksum = false
    public var dataOffset: UInt8?
    public var reserved: UInt8?
    /// `[odd-options KIND]`: the tester's options carry an oddity that leaves their meaning unchanged (`OptionOddity`).
    public var oddity: OptionOddity = .none

    public init(flags: ControlBits, seq: Expect<UInt32>, length: Expect<UInt32>, ack: Expect<UInt32>? = nil, window: Expect<UInt32>? = nil,
                urgent: Expect<UInt32>? = nil, options: [OptionSpec]? = nil, moreOptions: Bool = false) {
        self.flags = flags
        self.seq = seq
        self.length = length
        self.ack = ack
        self.window = window
        self.urgent = urgent
        self.options = options
        self.moreOptions = moreOptions
    }
}

extension TesterOptions {
    /// The offer as a SYN line's options without Timestamps (MSS, SACK-Permitted, Window Scale): what a SYN to
    /// TIME-WAIT carries, and what a packetdrill export can state.
    public var synOptionsWithoutTimestamps: [OptionSpec] {
        (mss.map { [.mss(.value($0))] } ?? []) + (sackPermitted ? [.sackOK] : []) + (windowScale.map { [.nop, .wscale(.value($0))] } ?? [])
    }
}

public enum OptionSpec: Hashable, Sendable {
    case mss(Expect<UInt16>)
    case wscale(Expect<UInt8>)
    case sackOK
    /// SACK blocks as left, right pairs (relative to the ISN of the side acknowledged).
    case sack([UInt32])
    /// `TS val V ecr E`; an injected `ecr *` echoes the target's last TSval.
    case timestamps(val: Expect<UInt32>, ecr: Expect<UInt32>)
    case nop
    case eol
    case raw([UInt8])
}

public enum CaseStep: Hashable, Sendable {
    case call(SocketCall, expect: ResultSpec?)
    case inject(SegmentSpec)
    case expectSegment(SegmentSpec)
    case expectNone
    case state(TCPState)
    case wait(Double)

    /// A step of the tester's (a call, a segment sent, a wait) rather than an expectation of the target's.
    public var isAction: Bool {
        switch self {
        case .call, .inject, .wait: true
        case .expectSegment, .expectNone, .state: false
        }
    }
}

/// `= 10`, `= -1 ECONNRESET`, `= -1 *`.
public struct ResultSpec: Hashable, Sendable {
    public var value: Int
    /// nil: the call succeeds.
    public var errno: ErrnoSpec?

    public init(value: Int, errno: ErrnoSpec? = nil) {
        self.value = value
        self.errno = errno
    }
}

/// The errno a failed call is expected to give: a known name, or `*` for any.
public enum ErrnoSpec: Hashable, Sendable, CustomStringConvertible {
    case any
    case code(Int32)

    public var description: String {
        switch self {
        case .any: "*"
        case .code(let e): Errno.name(e)
        }
    }
}

public struct CaseLine: Sendable {
    public var step: CaseStep
    public var line: Int
    /// The line as written, without comments.
    public var text: String
}

public struct CaseFile: Sendable {
    public var path: String
    public var options: [String: String] = [:]
    public var lines: [CaseLine] = []
    /// The comment block at the top, for reports.
    public var summary: String = ""
}
