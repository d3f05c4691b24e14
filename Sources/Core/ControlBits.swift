/// TCP control bits. SYN, ACK, FIN and RST are dimensions of every segment input class; the others are read at
/// run time only.
public struct ControlBits: OptionSet, Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    // Computed and inlinable: a stored `static let` is read through a lazy-initialization accessor in every
    // other module, several times per segment in the offline checker.
    @inlinable public static var fin: ControlBits { ControlBits(rawValue: 0x01) }
    @inlinable public static var syn: ControlBits { ControlBits(rawValue: 0x02) }
    @inlinable public static var rst: ControlBits { ControlBits(rawValue: 0x04) }
    @inlinable public static var psh: ControlBits { ControlBits(rawValue: 0x08) }
    @inlinable public static var ack: ControlBits { ControlBits(rawValue: 0x10) }
    @inlinable public static var urg: ControlBits { ControlBits(rawValue: 0x20) }
    @inlinable public static var ece: ControlBits { ControlBits(rawValue: 0x40) }
    @inlinable public static var cwr: ControlBits { ControlBits(rawValue: 0x80) }

    /// The bits that partition segment input classes, in RFC order of the CTL notation.
    public static let classBits: [ControlBits] = [.syn, .ack, .fin, .rst]

    /// In the order the RFC writes them: `SYN,ACK`, `FIN,ACK`, `RST,ACK`.
    public static let names: [(String, ControlBits)] = [
        ("SYN", .syn), ("FIN", .fin), ("RST", .rst), ("PSH", .psh), ("URG", .urg), ("ECE", .ece), ("CWR", .cwr), ("ACK", .ack),
    ]
    public static func named(_ s: String) -> ControlBits? { names.first { $0.0 == s }?.1 }

    /// `SYN,ACK` — the CTL notation of RFC 9293 §3.10.
    public var description: String {
        let parts = ControlBits.names.filter { contains($0.1) }.map(\.0)
        return parts.isEmpty ? "-" : parts.joined(separator: ",")
    }
}

extension ControlBits {
    /// `S`, `F`, `R`, `P`, `U`, `E`, `W` then `.` for ACK, as tcpdump and packetdrill print them (`none` for none).
    public var notation: String {
        var s = ""
        if contains(.syn) { s += "S" }
        if contains(.fin) { s += "F" }
        if contains(.rst) { s += "R" }
        if contains(.psh) { s += "P" }
        if contains(.urg) { s += "U" }
        if contains(.ece) { s += "E" }
        if contains(.cwr) { s += "W" }
        if contains(.ack) { s += "." }
        return s.isEmpty ? "none" : s
    }
}
