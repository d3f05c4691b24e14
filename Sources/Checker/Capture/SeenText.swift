import Model

/// What one end was seen to send, in its sequence space, with the text the capture holds. A segment whose text
/// was all seen before is a retransmission; one below the furthest octet seen but not seen before fills a gap
/// (it was reordered, or its first copy was lost before the capture point). Every octet sent again must be the
/// octet first sent: a sequence number names one octet of the stream (RFC 9293 §3.4), so a retransmission or a
/// re-segmentation that carries other values corrupts the stream of a receiver that took the first copy.
struct SeenText {
    /// Sequence numbers unwrapped to 64 bits around the furthest one seen (a transfer may pass 2^32).
    private var lastSeq: UInt32 = 0
    private var lastPos: UInt64 = 1 << 33
    private var started = false
    /// Sequence space seen, as disjoint ordered ranges (mostly one: an end sends in order).
    private(set) var ranges: [Range<UInt64>] = []
    /// Text held for comparison: `bytes[i]` is the octet at `bytesBase + i`, valid where `known` says so.
    private var bytes: [UInt8] = []
    private var bytesBase: UInt64 = 0
    private var known: [Range<UInt64>] = []
    /// Where each captured first copy starts, with its frame (for "first sent in frame N").
    private var firsts: [(start: UInt64, frame: Int)] = []
    /// At most this much text is held per end: older text is dropped (and no longer compared).
    static let cap = 4 << 20

    /// What a segment's text is against what was seen.
    enum Kind { case new, retransmission, gapFill, partly }

    /// An octet sent again with another value.
    struct Mismatch {
        /// Its sequence number and its offset from the segment's first octet.
        var seq: UInt32
        var was: UInt8
        var now: UInt8
        var firstFrame: Int
    }

    mutating func position(_ seq: UInt32) -> UInt64 {
        if !started {
            started = true
            lastSeq = seq
            return lastPos
        }
        return UInt64(Int64(lastPos) + Int64(Int32(bitPattern: seq &- lastSeq)))
    }

    /// Classifies `[seq, seq+length)` (its text), records it, and compares its captured text (`payload`, the
    /// first `payload.count` octets) with what was captured of the same octets before.
    mutating func note(seq: UInt32, length: UInt32, payload: UnsafeRawBufferPointer, frame: Int) -> (Kind, Mismatch?) {
        guard length > 0 else { return (.new, nil) }
        let lo = position(seq)
        let hi = lo + UInt64(length)
        let seenPart = overlap(lo, hi, ranges)
        let kind: Kind = seenPart == UInt64(length) ? .retransmission
            : seenPart > 0 ? .partly
            : (ranges.last.map { hi <= $0.upperBound } ?? false) ? .gapFill : .new
        var mismatch: Mismatch?
        if payload.count > 0, seenPart > 0 {
            mismatch = compare(lo, payload)
        }
        insert(lo..<hi, into: &ranges)
        if payload.count > 0 { store(lo, payload, frame: frame) }
        if hi > lastPos {
            lastSeq = seq &+ length
            lastPos = hi
        }
        return (kind, mismatch)
    }

    /// Octets of [lo, hi) inside `set`.
    private func overlap(_ lo: UInt64, _ hi: UInt64, _ set: [Range<UInt64>]) -> UInt64 {
        var total: UInt64 = 0
        var k = firstIndex(endingAfter: lo, set)
        while k < set.count, set[k].lowerBound < hi {
            total += min(hi, set[k].upperBound) - max(lo, set[k].lowerBound)
            k += 1
        }
        return total
    }

    /// The first range whose end is past `x` (binary search).
    private func firstIndex(endingAfter x: UInt64, _ set: [Range<UInt64>]) -> Int {
        var a = 0, b = set.count
        while a < b {
            let m = (a + b) / 2
            if set[m].upperBound <= x { a = m + 1 } else { b = m }
        }
        return a
    }

    private func insert(_ r: Range<UInt64>, into set: inout [Range<UInt64>]) {
        if let last = set.last, r.lowerBound >= last.lowerBound {
            // In order: extends or follows the last range.
            if r.lowerBound <= last.upperBound {
                set[set.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                set.append(r)
            }
            return
        }
        var k = firstIndex(endingAfter: r.lowerBound, set)
        // Ranges that touch `r` from below merge too.
        if k > 0, set[k - 1].upperBound == r.lowerBound { k -= 1 }
        var lo = r.lowerBound, hi = r.upperBound
        var j = k
        while j < set.count, set[j].lowerBound <= hi {
            lo = min(lo, set[j].lowerBound)
            hi = max(hi, set[j].upperBound)
            j += 1
        }
        set.replaceSubrange(k..<j, with: [lo..<hi])
    }

    private func compare(_ lo: UInt64, _ payload: UnsafeRawBufferPointer) -> Mismatch? {
        let hi = lo + UInt64(payload.count)
        var k = firstIndex(endingAfter: max(lo, bytesBase), known)
        while k < known.count, known[k].lowerBound < hi {
            let a = max(lo, known[k].lowerBound, bytesBase), b = min(hi, known[k].upperBound)
            var x = a
            while x < b {
                let was = bytes[Int(x - bytesBase)], now = payload[Int(x - lo)]
                if was != now {
                    return Mismatch(seq: lastSeq &+ UInt32(truncatingIfNeeded: x &- lastPos), was: was, now: now, firstFrame: frame(at: x))
                }
                x += 1
            }
            k += 1
        }
        return nil
    }

    private func frame(at x: UInt64) -> Int {
        var a = 0, b = firsts.count
        while a < b {
            let m = (a + b) / 2
            if firsts[m].start <= x { a = m + 1 } else { b = m }
        }
        return a > 0 ? firsts[a - 1].frame : 0
    }

    /// Keeps the captured text of [lo, lo+payload.count) where none was held (the first copy is the reference).
    private mutating func store(_ lo: UInt64, _ payload: UnsafeRawBufferPointer, frame: Int) {
        let hi = lo + UInt64(payload.count)
        if bytes.isEmpty, known.isEmpty { bytesBase = lo }
        guard lo >= bytesBase else { return }
        // In order, right after the last text held (nearly every segment): appended as it is.
        if let last = known.last, last.upperBound == lo, lo - bytesBase == UInt64(bytes.count) {
            bytes.append(contentsOf: payload)
            known[known.count - 1] = last.lowerBound..<hi
            firsts.append((lo, frame))
            trim()
            return
        }
        let held = overlap(lo, hi, known)
        guard held < UInt64(payload.count) else { return }
        // Far past what is held (a sequence number up to 2^32 ahead): what lies more than the cap behind could not
        // stay anyway, so it goes first and the gap is never filled with gigabytes of zeros (found by fuzzing:
        // Fuzz/regressions/pcap/seq-far-ahead.pcap asked for 4 GB).
        if hi - bytesBase > UInt64(SeenText.cap) { drop(before: hi - UInt64(SeenText.cap / 2)) }
        let end = Int(hi - bytesBase)
        if end > bytes.count { bytes.append(contentsOf: repeatElement(0, count: end - bytes.count)) }
        // Only the octets not held before: earlier copies stay the reference.
        var x = lo
        var k = firstIndex(endingAfter: lo, known)
        while x < hi {
            let next = k < known.count ? known[k].lowerBound : hi
            if x < next {
                let stop = min(next, hi)
                let dst = Int(x - bytesBase), src = Int(x - lo), n = Int(stop - x)
                bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[dst..<(dst + n)]).copyMemory(from: UnsafeRawBufferPointer(rebasing: payload[src..<(src + n)])) }
                x = stop
            }
            if k < known.count { x = max(x, known[k].upperBound); k += 1 }
        }
        insert(lo..<hi, into: &known)
        if firsts.last.map({ lo > $0.start }) ?? true { firsts.append((lo, frame)) }
        trim()
    }

    /// Bounded: the oldest text goes first.
    private mutating func trim() {
        if bytes.count > SeenText.cap { drop(before: bytesBase + UInt64(bytes.count - SeenText.cap / 2)) }
    }

    /// Forgets the text held before `base` (all of it when `base` lies past it).
    private mutating func drop(before base: UInt64) {
        guard base > bytesBase else { return }
        bytes.removeFirst(Int(min(UInt64(bytes.count), base - bytesBase)))
        bytesBase = base
        known.removeAll { $0.upperBound <= bytesBase }
        firsts.removeAll { $0.start < bytesBase }
    }
}
