import Foundation
import Link
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The SIGINT/SIGTERM handler (`Sys.cleanupRun`) runs on one thread while others go on writing until `_exit`.
/// Once it has begun, no thread may make a temporary file it would not remove: a kill test found
/// `pcaps/.active-open.pcap.PID-START-1.tmp` left by a `run` whose pcap writer created its temporary just after
/// the handler had unlinked the tracked ones. Run in a child process (an exit test): the cleanup is for good.
@Suite("atomic files and the signal cleanup")
struct AtomicFileTests {
    @Test("after the cleanup has begun, writers on other threads leave no temporary file; whole files stay whole")
    func noTemporaryAfterCleanup() async {
        await #expect(processExitsWith: .exitCode(0)) {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tcpspec-atomic-\(UUID().uuidString)").path
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            final class Shared: @unchecked Sendable {
                let lock = NSLock()
                var stop = false, refused = 0
                func with<T>(_ f: (Shared) -> T) -> T { lock.lock(); defer { lock.unlock() }; return f(self) }
            }
            let shared = Shared()
            let payload = [UInt8](repeating: 0x5A, count: 64 * 1024)
            var writers: [Thread] = []
            for w in 0..<4 {
                let t = Thread {
                    var i = 0
                    while !shared.with({ $0.stop }) {
                        do { try AtomicFile.write(payload, to: dir + "/w\(w)-\(i % 8).pcap") } catch {
                            if (error as? SystemError)?.errno == ECANCELED { shared.with { $0.refused += 1 } }
                        }
                        i += 1
                    }
                }
                t.start()
                writers.append(t)
            }
            usleep(50_000)
            Sys.cleanupRun()
            // The writers go on (a real handler would _exit now): nothing they do from here may leave a temporary.
            var seen: Set<String> = []
            let end = Date().addingTimeInterval(0.2)
            while Date() < end {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix(".tmp") { seen.insert(name) }
            }
            shared.with { $0.stop = true }
            usleep(50_000)
            let finals = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }
            let torn = finals.filter { (try? Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)).count) != payload.count }
            try? FileManager.default.removeItem(atPath: dir)
            if !seen.isEmpty { print("temporaries after the cleanup: \(seen.sorted())"); exit(1) }
            if shared.with({ $0.refused }) == 0 { print("no write was refused after the cleanup"); exit(2) }
            if finals.isEmpty || !torn.isEmpty { print("whole files: \(finals.count), torn: \(torn)"); exit(3) }
            exit(0)
        }
    }
}
