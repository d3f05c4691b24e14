import Core
import Foundation
import Fuzzer
import Link
import Report
import Spec
import Targets

/// Verdicted cases per second against Linux, how coverage grows, and the process's RSS over the run.
enum FuzzBench {
    static func rssMiB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for l in s.split(separator: "\n") where l.hasPrefix("VmRSS:") {
            return (Double(l.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
        }
        return 0
    }

    static func run(spec: CompiledSpec, seconds: Double) throws {
        let target = try LinuxTarget()
        defer { target.close() }
        var c = Fuzzer.Configuration()
        c.seed = 1
        c.duration = seconds
        c.minimize = false
        let fuzzer = Fuzzer(spec: spec, target: target, configuration: c)
        var samples: [(Double, Int, Double)] = []
        let rss0 = rssMiB()
        let s = try fuzzer.run { p in
            if samples.last.map({ p.seconds - $0.0 >= 0.25 }) ?? true { samples.append((p.seconds, p.cellsCovered, rssMiB())) }
        }
        // When coverage stopped growing: the time of the first sample with the final count.
        let plateau = samples.first { $0.1 >= s.cellsCovered }?.0 ?? s.seconds
        // How coverage grows: classes covered by 1, 2, 5, 10 and 20 s (and the end).
        let marks = [1.0, 2, 5, 10, 20].filter { $0 < s.seconds }
        let curve = marks.map { t in "\(Int(t)) s \(samples.last { $0.0 <= t + 0.01 }?.1 ?? 0)" } + ["end \(s.cellsCovered)"]
        let rss = samples.map(\.2)
        let steps = Double(s.steps) / s.seconds
        print(String(format: "fuzz linux/%@: %.0f verdicted cases/s (%.0f steps/s, %d cases in %.1f s, goal >= 5000 cases/s); coverage %d of %d input classes, reached at %.1f s (goal: every reachable class within 5 s); RSS %.1f MiB at start, %.1f–%.1f MiB during, %.1f MiB at end (goal <= 100 MiB, flat); %d divergences (not minimized)",
                     spec.profile, s.casesPerSecond, steps, s.cases, s.seconds, s.cellsCovered, s.cellsTotal, plateau, rss0, rss.min() ?? 0, rss.max() ?? 0, rssMiB(), s.divergences.count))
        // "Every reachable class" is not known in advance: the run's own final count stands for it (a longer
        // run, `--seconds 600`, is a better estimate), and the times to 90, 95 and 99% of it are printed.
        let reach = [0.90, 0.95, 0.99].map { f in
            String(format: "%.0f%% at %.1f s", f * 100, samples.first { Double($0.1) >= f * Double(s.cellsCovered) }?.0 ?? s.seconds)
        }
        print("fuzz linux/\(spec.profile): classes covered by time: \(curve.joined(separator: ", ")); of the run's \(s.cellsCovered): \(reach.joined(separator: ", "))")
    }
}

/// The whole conformance suite against Linux: wall time from target start to report (goal <= 10 s).
enum ConformBench {
    static func run(spec: CompiledSpec) throws {
        let t0 = Date()
        let target = try LinuxTarget()
        defer { target.close() }
        var c = Fuzzer.Configuration()
        c.minimize = true
        let r = try Fuzzer(spec: spec, target: target, configuration: c).conform(warmup: 3)
        let wall = Date().timeIntervalSince(t0)
        print(String(format: "conform linux/%@: %d tests in %.2f s wall (suite %.2f s; %d conform, %d diverge, %d unreachable, %d error); goal <= 10 s",
                     spec.profile, r.results.count, wall, r.seconds, r.count(.conforms), r.count(.diverges), r.count(.unreachable), r.count(.error)))
    }
}
