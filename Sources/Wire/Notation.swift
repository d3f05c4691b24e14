import Core

/// tcpdump/packetdrill notation: `S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>`,
/// `. 1:1(0) ack 1 win 502`, `P. 1:11(10) ack 1`, `R. 0:0(0) ack 1`, with sequence numbers relative to the
/// sender's ISN and acknowledgments relative to the receiver's once the handshake has bound them.
public enum Notation {
    /// - Parameters:
    ///   - seqBase: the sender's ISN (subtracted from SEQ), nil to print absolute numbers.
    ///   - ackBase: the receiver's ISN (subtracted from ACK).
    public static func format(_ t: TCPHeader, seqBase: UInt32? = nil, ackBase: UInt32? = nil) -> String {
        let seq = t.seq &- (seqBase ?? 0)
        let len = UInt32(t.payload.count)
        var s = "\(t.flags.notation) \(seq):\(seq &+ len)(\(len))"
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
