// Shared by every harness (Fuzz/build.py links each harness with the files of Fuzz/Harnesses/Support/).
import Foundation

/// A broken invariant: the message on stderr (optimized builds drop precondition's), then a crash for libFuzzer.
func require(_ ok: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !ok() { fail(message()) }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("invariant: " + message + "\n").utf8))
    abort()
}
