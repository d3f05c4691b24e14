import Foundation

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
/// the largest sample is within 10% of the smallest, for RSS and for descriptors.
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
        CommandLine.arguments.firstIndex(of: name).flatMap { $0 + 1 < CommandLine.arguments.count ? CommandLine.arguments[$0 + 1] : nil }
    }

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
            print("soak: not measured: \(exe) is missing (build every product: swift build -c release)")
            return
        }
        let corpus = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-soak-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: corpus) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["fuzz", "--target", target, "--profile", profile, "--duration", "\(Int(minutes * 60))s", "--seed", "1",
                       "--corpus", corpus, "--json", "--spec-dir", specDir()]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        // Read the summary as it comes so a full pipe never stalls the run.
        let summary = Locked(Data())
        out.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            summary.withLock { $0.append(d) }
        }
        print(String(format: "soak: tcpspec fuzz --target %@ --profile %@ for %.0f min, sampled every %.0f s", target, profile, minutes, interval))
        print("  time      RSS KiB   fds   agent RSS KiB  agent fds  processes")
        try p.run()
        let t0 = Date()
        var samples: [Sample] = []
        while p.isRunning {
            let elapsed = Date().timeIntervalSince(t0)
            if let r = rssKiB(p.processIdentifier), let f = fds(p.processIdentifier) {
                let kids = descendants(of: p.processIdentifier)
                let s = Sample(seconds: elapsed, rssKiB: r, fds: f, childRSSKiB: kids.compactMap(rssKiB).reduce(0, +),
                               childFDs: kids.compactMap(fds).reduce(0, +), children: kids.count)
                samples.append(s)
                print(String(format: "  %6.0fs  %8d  %4d  %13d  %9d  %9d", s.seconds, s.rssKiB, s.fds, s.childRSSKiB, s.childFDs, s.children + 1))
            }
            // Sleep in short steps so the end of the run is noticed at once.
            let until = Date().addingTimeInterval(interval)
            while p.isRunning, Date() < until { Thread.sleep(forTimeInterval: 0.2) }
        }
        p.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        let text = String(decoding: summary.withLock { $0 }, as: UTF8.self)
        let warm = min(minutes * 60 / 10, 300)
        let steady = samples.filter { $0.seconds >= warm }
        func spread(_ xs: [Int]) -> (Int, Int, Double) {
            guard let lo = xs.min(), let hi = xs.max(), lo > 0 else { return (0, 0, 0) }
            return (lo, hi, Double(hi - lo) / Double(lo) * 100)
        }
        let rss = spread(steady.map(\.rssKiB)), fd = spread(steady.map(\.fds))
        print(String(format: "soak: exit %d after %.0f s, %d samples (%d after the %.0f s warm-up)", p.terminationStatus, Date().timeIntervalSince(t0), samples.count, steady.count, warm))
        print(String(format: "soak: tcpspec RSS %d–%d KiB after warm-up (spread %.1f%%), descriptors %d–%d (spread %.1f%%); goal: flat within 10%% — %@",
                     rss.0, rss.1, rss.2, fd.0, fd.1, fd.2, rss.2 <= 10 && fd.2 <= 10 ? "met" : "NOT met"))
        if steady.contains(where: { $0.children > 0 }) {
            let crss = spread(steady.map(\.childRSSKiB)), cfd = spread(steady.map(\.childFDs))
            print(String(format: "soak: the agent's RSS %d–%d KiB (spread %.1f%%), descriptors %d–%d (spread %.1f%%)", crss.0, crss.1, crss.2, cfd.0, cfd.1, cfd.2))
        }
        // The fuzz summary's figures (JSON): cases run and divergences kept.
        if let data = text.data(using: .utf8), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let keys = ["cases", "casesPerSecond", "divergences", "restarts"].filter { obj[$0] != nil }
            print("soak: fuzz summary: " + keys.map { k in
                let v = obj[k]!
                return "\(k) \((v as? [Any]).map { "\($0.count)" } ?? "\(v)")"
            }.joined(separator: ", "))
        }
    }
}

/// A value shared with the pipe's reading thread.
final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func withLock<R>(_ f: (inout T) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try f(&value)
    }
}
