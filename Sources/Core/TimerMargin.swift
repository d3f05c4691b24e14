/// How far a timer's observed expiry may lie outside the profile's window before it is a divergence: the
/// measurement's error, stated with every timed verdict. A stack's timers fire late by their granularity (Linux:
/// one jiffy, and up to 1/8 of the delay in the timer wheel's coarser levels), and early by at most one tick;
/// the capture's timestamps add their resolution.
public struct TimerMargin: Hashable, Sendable {
    /// Seconds a timer may fire before its window opens.
    public var early: Double
    /// Seconds a timer may fire after its window closes, plus `lateFraction` of the window's upper bound.
    public var late: Double
    public var lateFraction: Double
    /// Where the margin comes from, for reports.
    public var source: String

    public init(early: Double, late: Double, lateFraction: Double, source: String) {
        self.early = early
        self.late = late
        self.lateFraction = lateFraction
        self.source = source
    }

    /// A stack in memory on a virtual clock: its timers fire exactly when they are due.
    public static let exact = TimerMargin(early: 0, late: 0, lateFraction: 0, source: "virtual clock")

    /// The margin after a window whose upper bound is `upper` seconds.
    public func late(after upper: Double) -> Double { late + lateFraction * upper }
}
