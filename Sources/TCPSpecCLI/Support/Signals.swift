import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM end tcpspec at once. Everything a run creates lives in anonymous network namespaces
/// that the kernel frees when the process exits, so exiting is the cleanup; the dispositions are set
/// explicitly because a parent may have left the signals ignored or blocked.
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
