import Core
import Foundation
import Link
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM end tcpspec at once. Everything a run creates lives in anonymous network namespaces
/// that the kernel frees when the process exits, so exiting is most of the cleanup; before it the handler
/// kills the agents this run started, unlinks its half-written temporary files and its run record
/// (`Sys.cleanupRun`: only async-signal-safe calls, on paths precomputed in static slots). The dispositions
/// are set explicitly because a parent may have left the signals ignored or blocked.
enum Signals {
    static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { s in
                let msg: StaticString = "\ntcpspec: interrupted; namespaces and links go with the process\n"
                _ = write(2, msg.utf8Start, msg.utf8CodeUnitCount)
                Sys.cleanupRun()
                _exit(128 + s)
            }
        }
        signal(SIGPIPE, SIG_IGN)
    }
}

@main
enum Entry {
    static func main() {
        Signals.install()
        TCPSpec.main()
    }
}
