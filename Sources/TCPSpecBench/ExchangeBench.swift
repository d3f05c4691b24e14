import Core
import Foundation
import Link
import Targets
import Wire

/// What one fuzzing round's exchange with Linux costs, part by part, on an idle target (no fuzzer): the hop to
/// the target namespace's thread, a barrier, the sock_diag lookups of 64 connections, socket calls and 64
/// injected segments with their replies. Each figure is the best of three runs (the machine's other load only
/// ever adds). docs/perf-fuzz.md explains what each part is and what would make it cheaper.
enum ExchangeBench {
    static func run() throws {
        let t = try LinuxTarget()
        defer { t.close() }
        let tuples = (0..<64).map { Tuple(targetPort: UInt16(10000 + $0), testerPort: UInt16(30000 + $0)) }
        let syns = (0..<64).map { i in t.frame(TCPHeader(sourcePort: UInt16(40000 + i), destinationPort: 9, seq: UInt32(i), flags: .syn)).encode() }
        let parts: [(String, Int, () throws -> Void)] = [
            ("an empty hop to the target thread and back", 20000, { try t.topology.target.run {} }),
            ("a barrier (probe SYN injected, its RST captured)", 5000, { _ = try t.barrier() }),
            ("an exchange with no calls, no frames, no states (its hops and barrier)", 5000, { _ = try t.exchange(calls: [], inject: [], states: []) }),
            ("sock_diag states of 64 tuples without sockets", 2000, { _ = try t.states(of: tuples) }),
            ("an exchange injecting 64 SYNs to a closed port (64 RSTs back)", 2000, { _ = try t.exchange(calls: [], inject: syns, states: []) }),
            ("64 listens, then 64 releases (two exchanges)", 300, {
                _ = try t.exchange(calls: tuples.map { (.listen(backlog: 64), $0) }, inject: [], states: [])
                _ = try t.exchange(calls: tuples.map { (.release, $0) }, inject: [], states: [])
            }),
        ]
        for (label, n, body) in parts {
            var best = Double.infinity
            for _ in 0..<3 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<n { try body() }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e3 / Double(n))
            }
            print(String(format: "exchange: %.1f µs for %@", best, label))
        }
        // The same lookups finding a socket (LISTEN), as the fuzzer's mostly do.
        _ = try t.exchange(calls: tuples.map { (.listen(backlog: 64), $0) }, inject: [], states: [])
        var best = Double.infinity
        for _ in 0..<3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<2000 { _ = try t.states(of: tuples) }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e3 / 2000)
        }
        print(String(format: "exchange: %.1f µs for sock_diag states of 64 tuples with a listener each (%.1f µs a lookup)", best, best / 64))
    }
}
