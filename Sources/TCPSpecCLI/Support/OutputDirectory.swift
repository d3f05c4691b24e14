import ArgumentParser
import Foundation
import Link

/// An output directory (`--out`, `--corpus`, `--output-dir`) checked before the work starts: shown to take a file
/// (the directories it needs are made for the test and removed again, so that a run refused later leaves nothing),
/// so that an unusable one is reported at once in plain words instead of after a whole run whose results would
/// then be lost.
///
/// ```
/// $ tcpspec fuzz --corpus /proc        # tcpspec: --corpus /proc: cannot write files there (permission denied)
/// ```
enum OutputDirectory {
    static func prepare(_ path: String, option: String) throws {
        if let why = problem(path) {
            FileHandle.standardError.write(Data("tcpspec: \(option) \(path): \(why)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// Why nothing can be written at `path`, or nil.
    static func problem(_ path: String) -> String? {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
            return "it is a file, not a directory"
        }
        // The directories missing on the way, made now and removed after the test.
        var missing: [String] = []
        var p = (path as NSString).standardizingPath
        while !p.isEmpty, p != "/", !FileManager.default.fileExists(atPath: p) {
            missing.append(p)
            p = (p as NSString).deletingLastPathComponent
        }
        defer { for d in missing { try? FileManager.default.removeItem(atPath: d) } }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            return "cannot make the directory (\(reason(of: error)))"
        }
        // A file made and removed: permissions, a read-only mount and /proc-like file systems all show here.
        let probe = (path as NSString).appendingPathComponent(".tcpspec-write-test-\(getpid())")
        do {
            let fd = try Sys.open(probe, .writeOnly, options: [.create, .exclusive])
            Sys.close(fd)
            Sys.unlink(probe)
        } catch {
            return "cannot write files there (making one failed: \(words(error.errno)))"
        }
        return nil
    }

    /// strerror's words, lower case, for an errno.
    static func words(_ e: Int32) -> String { String(cString: strerror(e)).lowercased() }

    /// What a Foundation error means, without its domain and code (`NSCocoaErrorDomain Code=516 …`).
    static func reason(of error: Error) -> String {
        if let u = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
            return words(Int32(u.code))
        }
        let e = error as NSError
        if e.domain == NSPOSIXErrorDomain { return words(Int32(e.code)) }
        switch e.code {
        case NSFileWriteFileExistsError: return "a file of that name is in the way"
        case NSFileWriteNoPermissionError: return "permission denied"
        case NSFileWriteVolumeReadOnlyError: return "read-only file system"
        default: return "error \(e.code)"
        }
    }
}
