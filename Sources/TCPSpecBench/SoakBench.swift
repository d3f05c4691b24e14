import Core
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The soak's child, ended with it when the soak is interrupted (a signal handler reads only this).
nonisolated(unsafe) var soakChild: pid_t = 0

/// The soak: the real `tcpspec fuzz` (minimization and corpus writing on) against a target for a long time,
/// its resident memory and open file descriptors sampled from /proc at a fixed interval — and those of every
/// process it started (a userspace target's agent) — to show they stay flat.
///
/// ```
/// $ swift build -c release && .build/release/tcpspec-bench soak                       # 60 minutes, linux
/// $ .build/release/tcpspec-bench soak --minutes 10 --target pytcp --interval 10
/// ```
///
/// Flat means: after the warm-up (the first tenth of the run, at most 5 minutes: tables and buffers filling),
/// the mean of the last quarter of the samples is within 10% of the first quarter's, for RSS and for
/// descriptors (the spread is printed beside it).
enum SoakBench {
    struct Sample {
        var seconds: Double
        var rssKiB: Int
        var fds: Int
        var childRSSKiB: Int
        var childFDs: Int
        var children: Int
    }

    static func arg(_ name: String) -> String? {
        BenchArguments.value(name)
    }

    /// One line as it comes, also into a file or a pipe (print's buffer would hold an hour's samples).
    static func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

    static func rssKiB(_ pid: Int32) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for l in s.split(separator: "\n") where l.hasPrefix("VmRSS:") {
            return Int(l.split(separator: " ").dropFirst().first ?? "0")
        }
        return nil
    }

    static func fds(_ pid: Int32) -> Int? { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count }

    /// Every descendant of `pid` (from each process's parent in /proc/PID/stat).
    static func descendants(of pid: Int32) -> [Int32] {
        var parent: [Int32: Int32] = [:]
        for e in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let p = Int32(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let pp = Int32(fields[1]) { parent[p] = pp }
        }
        var out: [Int32] = []
        var frontier = [pid]
        while let p = frontier.popLast() {
            for (c, pp) in parent where pp == p {
                out.append(c)
                frontier.append(c)
            }
        }
        return out
    }

    static func run() throws {
        let minutes = arg("--minutes").flatMap(Double.init) ?? 60
        let interval = arg("--interval").flatMap(Double.init) ?? 30
        let target = arg("--target") ?? "linux"
        let profile = arg("--profile") ?? (target == "linux" ? "linux" : "rfc9293")
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("tcpspec").path
        guard FileManager.default.isExecutableFile(atPath: exe) else {
            say("soak: not measured: \(exe) is missing (build every product: swift build -c release)")
            return
        }
        let corpus = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-soak-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: corpus) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["fuzz", "--target", target, "--profile", profile, "--duration", "\(Int(minutes * 60))s", "--seed", "1",
                       "--corpus", corpus, "--json", "--spec-dir", specDir()]
        // The summary goes to a file (a pipe nobody reads during the run could fill and stall it at the end).
        let summaryPath = corpus + ".json"
        FileManager.default.createFile(atPath: summaryPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: summaryPath) }
        p.standardOutput = FileHandle(forWritingAtPath: summaryPath)
        p.standardError = FileHandle.nullDevice
        say(String(format: "soak: tcpspec fuzz --target %@ --profile %@ for %.0f min, sampled every %.0f s", target, profile, minutes, interval))
        say("  time      RSS KiB   fds   agent RSS KiB  agent fds  processes")
        try p.run()
        soakChild = p.processIdentifier
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { s in
                if soakChild > 0 { kill(soakChild, SIGTERM) }
                _exit(128 + s)
            }
        }
        let t0 = Date()
        var samples: [Sample] = []
        while p.isRunning {
            let elapsed = Date().timeIntervalSince(t0)
            if let r = rssKiB(p.processIdentifier), let f = fds(p.processIdentifier) {
                let kids = descendants(of: p.processIdentifier)
                let s = Sample(seconds: elapsed, rssKiB: r, fds: f, childRSSKiB: kids.compactMap(rssKiB).reduce(0, +),
                               childFDs: kids.compactMap(fds).reduce(0, +), children: kids.count)
                samples.append(s)
                say(String(format: "  %6.0fs  %8d  %4d  %13d  %9d  %9d", s.seconds, s.rssKiB, s.fds, s.childRSSKiB, s.childFDs, s.children + 1))
            }
            // Sleep in short steps so the end of the run is noticed at once.
            let until = Date().addingTimeInterval(interval)
            while p.isRunning, Date() < until { Thread.sleep(forTimeInterval: 0.2) }
        }
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: summaryPath, encoding: .utf8)) ?? ""
        let warm = min(minutes * 60 / 10, 300)
        let steady = samples.filter { $0.seconds >= warm }
        func variation(_ xs: [Int]) -> (Int, Int, Double) {
            guard let lo = xs.min(), let hi = xs.max(), lo > 0 else { return (0, 0, 0) }
            return (lo, hi, Double(hi - lo) / Double(lo) * 100)
        }
        say(String(format: "soak: exit %d after %.0f s, %d samples (%d after the %.0f s warm-up)", p.terminationStatus, Date().timeIntervalSince(t0), samples.count, steady.count, warm))
        // Flat = no drift: the mean of the last quarter of the steady samples within 10% of the first quarter's.
        // (The spread is printed too: descriptors rise and fall with the connections in flight at the moment
        // of a sample — up to 64 lanes' sockets — which is not growth.)
        func drift(_ xs: [Int]) -> Double {
            let q = max(1, xs.count / 4)
            let first = Double(xs.prefix(q).reduce(0, +)) / Double(q), last = Double(xs.suffix(q).reduce(0, +)) / Double(q)
            return first > 0 ? (last - first) / first * 100 : 0
        }
        func report(_ what: String, _ xs: [Int], unit: String) -> Bool {
            let (lo, hi, sp) = variation(xs)
            let d = drift(xs)
            say(String(format: "soak: %@ %d–%d%@ after warm-up (spread %.1f%%), last quarter vs first quarter %+.1f%%", what, lo, hi, unit.isEmpty ? "" : " " + unit, sp, d))
            return abs(d) <= 10
        }
        let flatRSS = report("tcpspec RSS", steady.map(\.rssKiB), unit: "KiB")
        let flatFDs = report("tcpspec descriptors", steady.map(\.fds), unit: "")
        if steady.contains(where: { $0.children > 0 }) {
            _ = report("agent RSS", steady.map(\.childRSSKiB), unit: "KiB")
            _ = report("agent descriptors", steady.map(\.childFDs), unit: "")
        }
        say("soak: goal: flat within 10% (drift of RSS and descriptors) — " + (flatRSS && flatFDs ? "met" : "NOT met"))
        // The fuzz summary's figures (JSON): cases run and divergences kept.
        if let data = text.data(using: .utf8), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let keys = ["cases", "casesPerSecond", "divergences", "restarts"].filter { obj[$0] != nil }
            say("soak: fuzz summary: " + keys.map { k in
                let v = obj[k]!
                return "\(k) \((v as? [Any]).map { "\($0.count)" } ?? "\(v)")"
            }.joined(separator: ", "))
        }
    }
}
