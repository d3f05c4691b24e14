import Generator
import Core
import Link
import Model

/// Delta debugging (Zeller's ddmin) over a failing case's steps, then simpler field values: the smallest case
/// that still shows the same finding. `reproduces` runs a candidate and returns the steps that ran with what
/// it showed, or nil when the finding is gone.
struct Minimizer<Evidence> {
    let reproduces: ([FuzzStep]) throws -> (steps: [FuzzStep], evidence: Evidence)?
    /// What to keep when the original does not reproduce alone.
    let asFound: ([FuzzStep]) throws -> (steps: [FuzzStep], evidence: Evidence)

    /// Only shorten waits (each replay of a case that waits on a real clock costs its waits).
    var onlyWaits = false
    /// Whether shorter waits are tried at all.
    var shortensWaits = true

    func minimize(_ original: [FuzzStep]) throws -> (steps: [FuzzStep], evidence: Evidence) {
        var steps = original
        // Not reproducible alone (it needed another connection's timing): keep it as found.
        guard var best = try reproduces(steps) else { return try asFound(steps) }
        if onlyWaits { return try shortenWaits(&steps, best) }
        // ddmin: remove chunks while the divergence stays.
        var n = 2
        while steps.count >= 2 {
            let chunk = max(1, steps.count / n)
            var reduced = false
            var start = 0
            while start < steps.count {
                var candidate = steps
                candidate.removeSubrange(start..<min(steps.count, start + chunk))
                if !candidate.isEmpty, let r = try reproduces(candidate) {
                    steps = candidate
                    best = r
                    n = max(n - 1, 2)
                    reduced = true
                    break
                }
                start += chunk
            }
            if !reduced {
                if n >= steps.count { break }
                n = min(steps.count, n * 2)
            }
        }
        // ddmin's chunks follow fixed boundaries; removing every window of steps makes the result 1-minimal
        // for contiguous runs too (e.g. a handshake in the middle).
        var changed = true
        while changed {
            changed = false
            var k = steps.count - 1
            while k >= 1 && !changed {
                for start in 0...(steps.count - k) {
                    var candidate = steps
                    candidate.removeSubrange(start..<(start + k))
                    if !candidate.isEmpty, let r = try reproduces(candidate) {
                        steps = r.steps
                        best = r
                        changed = true
                        break
                    }
                }
                k -= 1
            }
        }
        // Simpler values: no text, a full window, no urgent pointer, no PSH/URG.
        for i in steps.indices {
            guard case .segment(let s) = steps[i] else { continue }
            let simpler: [Segment] = [
                { var x = s; x.dataLength = 0; return x }(),
                { var x = s; x.dataLength = min(x.dataLength, 1); return x }(),
                { var x = s; x.window = 65535; return x }(),
                { var x = s; x.urgentPointer = 0; x.ctl.remove(.urg); return x }(),
                { var x = s; x.ctl.remove(.psh); return x }(),
            ]
            for c in simpler where c != s {
                var candidate = steps
                candidate[i] = .segment(c)
                if let r = try reproduces(candidate) {
                    steps = candidate
                    best = r
                    if case .segment(let now) = steps[i], now == c { continue }
                }
            }
        }
        return try shortenWaits(&steps, best)
    }

    /// Shorter waits: a timer that fired early shows in a case file only when the wait ends before the window the
    /// model gives it (the `>` lines after a wait say what was due by its end, not when).
    func shortenWaits(_ steps: inout [FuzzStep], _ found: (steps: [FuzzStep], evidence: Evidence)) throws -> (steps: [FuzzStep], evidence: Evidence) {
        var best = found
        guard shortensWaits else { return best }
        for i in steps.indices {
            for fraction in [0.75, 0.5] {
                guard case .wait(let d) = steps[i], d > 0.01 else { break }
                var candidate = steps
                candidate[i] = .wait((d * fraction * 1000).rounded() / 1000)
                if let r = try reproduces(candidate) {
                    steps = candidate
                    best = r
                }
            }
        }
        return best
    }
}
