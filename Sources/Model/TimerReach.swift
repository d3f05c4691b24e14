import Core
import Spec

/// Where each timer can run at all, read from the spec alone: a conformance test of a timer's expiry in a state
/// where it never runs is proven unreachable, not "not reached on this way".
///
/// An over-approximation, so that "never runs" is a proof: a timer may run in a state if some rule leading there
/// starts it (`timer T start`; `transmit` and `retransmit` start the retransmission timer), or if it may run in
/// the state the rule leaves and the rule does not end in a state that deletes the TCB (CLOSED, LISTEN: no timers,
/// RFC 9293 §3.10.8 "there is no TCB and no timer"). Every input class of every state counts, reachable or not;
/// stops (explicit, or RFC 6298 §5.2's when nothing is outstanding) are ignored. The keep-alive timer is the
/// model's own (`TCPModel.applyKeepalive`): it runs exactly where a KEEPALIVE-TIMEOUT rule restarts it.
public struct TimerReach: Sendable {
    /// Per timer (`TimerName.rawValue`), per state index: whether it may run there.
    private var runs: [[Bool]]

    /// - Parameter specs: the profile and the other alternatives of its choices (same states, rules replaced):
    ///   a timer that may run under any of them may run.
    public init(specs: [CompiledSpec]) {
        let n = specs.first?.states.count ?? 0
        runs = Array(repeating: Array(repeating: false, count: n), count: TimerName.allCases.count)
        // The keep-alive timer runs only in the states whose KEEPALIVE-TIMEOUT rules restart it (TCPModel's
        // `keepaliveStates`): exact, no rule carries it anywhere else.
        for spec in specs {
            for s in 0..<min(n, spec.states.count) where !spec.states[s].clears && spec.keepaliveStates & (1 << UInt64(s)) != 0 {
                runs[Int(TimerName.keepalive.rawValue)][s] = true
            }
        }
        var changed = true
        while changed {
            changed = false
            for spec in specs {
                for s in 0..<min(n, spec.states.count) {
                    for e in EventKind.allCases {
                        let t = spec.table(state: s, event: e)
                        for c in Set(t.cellChains) where c >= 0 {
                            let chain = spec.chains[c]
                            let to = chain.finalState ?? s
                            guard to < n, !spec.states[to].clears else { continue }
                            for timer in TimerName.allCases where timer != .keepalive && !runs[Int(timer.rawValue)][to] {
                                if runs[Int(timer.rawValue)][s] || chain.starts(timer) {
                                    runs[Int(timer.rawValue)][to] = true
                                    changed = true
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Whether `timer` may run in the state at `index`.
    public func mayRun(_ timer: TimerName, in index: Int) -> Bool {
        index < runs[Int(timer.rawValue)].count && runs[Int(timer.rawValue)][index]
    }
}
