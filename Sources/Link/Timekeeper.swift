import Core
import Synchronization

/// The one clock tcpspec reads time from: deadlines, timeouts, waits and run durations. Injected (each target
/// has one, see `Target.clock`) rather than read from a global, so that a stack can run on simulated time.
/// Seconds as a Double; `now` has no fixed origin (only differences mean anything).
public protocol Timekeeper: Sendable {
    var now: Double { get }
    /// Waits `seconds` on this clock.
    func sleep(_ seconds: Double)
}

/// Real time that only moves forward (CLOCK_MONOTONIC): a wall clock set back or forward during a run would
/// stretch or cut fuzz durations and timeouts.
public struct MonotonicClock: Timekeeper {
    public init() {}
    public var now: Double { Sys.monotonicNow() }
    public func sleep(_ seconds: Double) { Sys.sleep(seconds) }
}

/// Simulated time, moved only by `advance` and `sleep` (which returns at once, the time advanced): a stack
/// running on it takes no real time to wait out its timers.
public final class VirtualClock: Timekeeper {
    private let seconds: Mutex<Double>

    public init(start: Double = 0) { seconds = Mutex(start) }

    public var now: Double { seconds.withLock { $0 } }

    public func advance(by delta: Double) {
        precondition(delta >= 0, "a virtual clock does not go back")
        seconds.withLock { $0 += delta }
    }

    public func sleep(_ seconds: Double) { advance(by: max(0, seconds)) }
}
