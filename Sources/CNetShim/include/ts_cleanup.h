// What a run removes when SIGINT or SIGTERM ends it, and /proc facts the run registry needs. The slots are
// static so that the signal handler reads them with async-signal-safe calls only (open, read, kill, unlink);
// nothing here allocates. Unlike cnetshim.h these functions keep state (the slots), one set per process.
#ifndef TS_CLEANUP_H
#define TS_CLEANUP_H

#include <stdint.h>

// The start time of a process (/proc/PID/stat field 22, in clock ticks since boot) and its state letter
// (field 3: R, S, Z, ...). Returns 0, or -errno (-ENOENT: no such process). Async-signal-safe.
int ts_proc_stat(int pid, uint64_t *start_time, char *state);

// The run's record file, unlinked by ts_cleanup_run.
void ts_cleanup_set_record(const char *path);
// A process to SIGKILL in ts_cleanup_run if it still has this start time. 0, or -ENOSPC.
int ts_cleanup_track_pid(int pid, uint64_t start_time);
void ts_cleanup_untrack_pid(int pid);
// A temporary file to unlink in ts_cleanup_run. The slot number (for untrack), or -ENOSPC / -ENAMETOOLONG.
int ts_cleanup_track_file(const char *path);
void ts_cleanup_untrack_file(int slot);
// Creates a tracked temporary file (O_CREAT|O_EXCL, write-only, close-on-exec): the fd, or -errno, or
// -ECANCELED once ts_cleanup_run has begun. Another thread's signal handler cannot unlink the tracked files
// between a creation's start and its end and then leave the new file behind: ts_cleanup_run waits for
// creations in flight before it unlinks, and refuses new ones.
int ts_cleanup_create(const char *path, int mode);
// Kills the tracked processes, unlinks the tracked files and the record. Async-signal-safe; for the
// SIGINT/SIGTERM handler and for exit.
void ts_cleanup_run(void);

// An unnamed file in `dir` (O_TMPFILE): it has no name to leave behind, whatever ends the process.
int ts_open_tmpfile(const char *dir);

#endif
