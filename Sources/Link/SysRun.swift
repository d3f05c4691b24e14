import Core
import CNetShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The system calls of the run registry (`RunRegistry`, `AtomicFile`), on the same seam as the others.
extension Sys {
    /// A process's identity beyond its pid: its start time (/proc/PID/stat field 22, clock ticks since boot)
    /// and state letter. nil when there is no such process.
    public static func processStat(_ pid: Int32) -> (startTime: UInt64, state: Character)? {
        var start: UInt64 = 0
        var st: CChar = 0
        guard ts_proc_stat(pid, &start, &st) == 0 else { return nil }
        return (start, Character(UnicodeScalar(UInt8(bitPattern: st))))
    }

    /// Whether `pid` is running (not a zombie) and is the process that started at `startTime`.
    public static func isAlive(_ pid: Int32, startTime: UInt64) -> Bool {
        guard pid > 0, let s = processStat(pid) else { return false }
        return s.startTime == startTime && s.state != "Z" && s.state != "X"
    }

    /// Creates a file that must not exist yet, for writing (appending when `append`).
    public static func createExclusive(_ path: String, mode: mode_t = 0o644, append: Bool = false) throws(SystemError) -> FileDescriptor {
        try open(path, .writeOnly, options: append ? [.create, .exclusive, .append] : [.create, .exclusive], permissions: mode, operation: "create \(path)")
    }

    public static func openReadWrite(_ path: String) throws(SystemError) -> FileDescriptor { try open(path, .readWrite) }

    /// An unnamed file in `directory` (O_TMPFILE): nothing to leave behind whatever ends the process.
    public static func openUnnamed(in directory: String) throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try check(ts_open_tmpfile(directory), "open an unnamed file in \(directory)"))
    }

    /// flock(2) LOCK_EX | LOCK_NB: true when this descriptor now holds the lock.
    public static func tryLock(_ fd: FileDescriptor) -> Bool { flock(fd.rawValue, LOCK_EX | LOCK_NB) == 0 }
    /// flock(2) LOCK_EX, waiting for it; released by `unlock` or when the descriptor closes.
    public static func lock(_ fd: FileDescriptor) throws(SystemError) { _ = try checkErrno(flock(fd.rawValue, LOCK_EX), "lock") }
    public static func unlock(_ fd: FileDescriptor) { _ = flock(fd.rawValue, LOCK_UN) }

    public static func rename(_ from: String, _ to: String) throws(SystemError) {
        try checkErrno(Glibc.rename(from, to), "rename \(from) to \(to)")
    }

    /// Removes a file; a missing file is not an error. True when it was there.
    @discardableResult
    public static func unlink(_ path: String) -> Bool { Glibc.unlink(path) == 0 }

    /// The SIGINT/SIGTERM cleanup slots (see ts_cleanup.h): what the handler kills and unlinks.
    public static func cleanupTrack(pid: Int32, startTime: UInt64) { _ = ts_cleanup_track_pid(pid, startTime) }
    public static func cleanupUntrack(pid: Int32) { ts_cleanup_untrack_pid(pid) }
    public static func cleanupTrack(file: String) -> Int32 { ts_cleanup_track_file(file) }
    public static func cleanupUntrack(slot: Int32) { ts_cleanup_untrack_file(slot) }
    /// Creates a temporary file that must not exist yet (write-only), so that a SIGINT/SIGTERM handler on
    /// another thread either sees it and unlinks it or makes this fail (ECANCELED): never one left behind.
    public static func cleanupCreate(_ path: String, mode: mode_t) throws(SystemError) -> FileDescriptor {
        let fd = ts_cleanup_create(path, Int32(mode))
        guard fd >= 0 else { throw SystemError(operation: "create \(path)", errno: -fd) }
        return FileDescriptor(rawValue: fd)
    }
    public static func cleanupSetRecord(_ path: String?) { ts_cleanup_set_record(path) }
    /// Kills tracked processes, unlinks tracked files and the record (async-signal-safe).
    public static func cleanupRun() { ts_cleanup_run() }
}
