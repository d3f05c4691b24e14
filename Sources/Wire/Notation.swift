import Core

/// tcpdump/packetdrill notation: `S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>`,
/// `. 1:1(0) ack 1 win 502`, `P. 1:11(10) ack 1`, `R. 0:0(0) ack 1`, with sequence numbers relative to the
/// sender's ISN and acknowledgments relative to the receiver's once the handshake has bound them.
public enum Notation {
    /// `S`, `F`, `R`, `P`, `U`, `E`, `W` then `.` for ACK, as tcpdump prints them.
    public static func flags(_ c: ControlBits) -> String {
        var s = ""
        if c.contains(.syn) { s += "S" }
        if c.contains(.fin) { s += "F" }
        if c.contains(.rst) { s += "R" }
        if c.contains(.psh) { s += "P" }
        if c.contains(.urg) { s += "U" }
        if c.contains(.ece) { s += "E" }
        if c.contains(.cwr) { s += "W" }
        if c.contains(.ack) { s += "." }
        return s.isEmpty ? "none" : s
    }

    /// - Parameters:
    ///   - seqBase: the sender's ISN (subtracted from SEQ), nil to print absolute numbers.
    ///   - ackBase: the receiver's ISN (subtracted from ACK).
    public static func format(_ t: TCPHeader, seqBase: UInt32? = nil, ackBase: UInt32? = nil) -> String {
        let seq = t.seq &- (seqBase ?? 0)
        let len = UInt32(t.payload.count)
        var s = "\(flags(t.flags)) \(seq):\(seq &+ len)(\(len))"
        if t.flags.contains(.ack) { s += " ack \(t.ack &- (ackBase ?? 0))" }
        s += " win \(t.window)"
        if t.flags.contains(.urg) || t.urgentPointer != 0 { s += " urg \(t.urgentPointer)" }
        if !t.options.isEmpty { s += " <" + t.options.map(\.notation).joined(separator: ",") + ">" }
        if t.reserved != 0 { s += " [reserved \(t.reserved)]" }
        if let v = t.checksumValid, !v { s += " [bad checksum]" }
        if let o = t.dataOffsetOverride { s += " [doff \(o)]" }
        return s
    }
}
