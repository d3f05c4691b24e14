import Dispatch
import Spec

/// Connections judged on several threads: each worker is a `CaptureChecker` of its own that sees only the
/// connections whose 4-tuple hashes to it, fed in batches by the thread that reads and decodes the file. A
/// connection's segments stay in capture order on one worker, and so do all incarnations of a 4-tuple (a new SYN
/// on the ports of one in TIME-WAIT is judged against it), so the verdicts are the ones a single thread reaches.
final class ShardPool: @unchecked Sendable {
    /// Segments with their captured text copied out of the reader's buffer (valid only during its callback).
    struct Batch {
        var segments: [(n: Int, time: Double, s: CapturedSegment, offset: Int, count: Int)] = []
        var text: [UInt8] = []
    }

    /// Segments per hand-over: a worker handed few at a time spends more on waking and on cold caches than on
    /// judging (measured with `tcpspec-bench check-keep --jobs 2`: 256 a batch took 1.35 s, 4,096 0.97 s, 16,384
    /// 0.80 s for 2 M segments; one thread 1.3 s). A file shorter than a batch is judged at `finish`.
    static let batchSize = 16_384
    /// Batches a worker may have waiting: the reader blocks beyond that, so memory stays bounded (about 3 MB a
    /// batch of 100-octet segments) on a file of any size.
    static let inFlight = 2

    private let workers: [CaptureChecker]
    private let queues: [DispatchQueue]
    private let room: [DispatchSemaphore]
    private var batches: [Batch]

    init(spec: CompiledSpec, file: String, jobs: Int) {
        workers = (0..<jobs).map { _ in CaptureChecker(spec: spec, file: file) }
        queues = (0..<jobs).map { DispatchQueue(label: "tcpspec.check.\($0)") }
        room = (0..<jobs).map { _ in DispatchSemaphore(value: ShardPool.inFlight) }
        batches = Array(repeating: Batch(), count: jobs)
    }

    /// Which worker follows this 4-tuple: a fixed mix of its fields (not `Hasher`, seeded per process), so a
    /// run is reproducible down to which thread judged what.
    @inline(__always)
    func worker(for key: CaptureChecker.FlowKey) -> Int {
        var h = key.a.lo ^ key.a.hi &* 31 ^ key.b.lo &* 0x9E37_79B9_7F4A_7C15 ^ key.b.hi
        h ^= UInt64(key.pa) << 16 | UInt64(key.pb)
        h = (h ^ (h >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        return Int(h % UInt64(workers.count))
    }

    func add(_ n: Int, _ time: Double, _ s: CapturedSegment, _ payload: UnsafeRawBufferPointer) {
        let w = worker(for: CaptureChecker.key(s).0)
        batches[w].segments.append((n, time, s, batches[w].text.count, payload.count))
        batches[w].text.append(contentsOf: payload)
        if batches[w].segments.count >= ShardPool.batchSize { submit(w) }
    }

    private func submit(_ w: Int) {
        let batch = batches[w]
        batches[w] = Batch()
        batches[w].segments.reserveCapacity(ShardPool.batchSize)
        guard !batch.segments.isEmpty else { return }
        room[w].wait()
        let checker = Handed(workers[w]), room = room[w]
        queues[w].async {
            batch.text.withUnsafeBytes { text in
                for x in batch.segments {
                    checker.value.segment(x.n, x.time, x.s, UnsafeRawBufferPointer(rebasing: text[x.offset..<(x.offset + x.count)]))
                }
            }
            room.signal()
        }
    }

    /// Hands over what is left, waits for every worker, and returns every connection's report (unsorted).
    func finish() -> [ConnectionReport] {
        for w in workers.indices { submit(w) }
        var all: [ConnectionReport] = []
        for w in workers.indices {
            queues[w].sync {
                workers[w].finish()
                all += workers[w].report.connections
            }
        }
        return all
    }
}

/// A worker's checker handed to its queue: only that queue touches it until `finish` waits for the queue.
private struct Handed: @unchecked Sendable {
    let value: CaptureChecker
    init(_ value: CaptureChecker) { self.value = value }
}
