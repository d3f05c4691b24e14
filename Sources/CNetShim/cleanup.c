#define _GNU_SOURCE
#include "ts_cleanup.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TS_PIDS 64
#define TS_FILES 64
#define TS_PATH 4096

// A slot is 0 (free), 1 (being filled: the handler skips it) or 2 (armed).
static _Atomic int pid_slot[TS_PIDS];
static _Atomic uint64_t pid_start[TS_PIDS];
static _Atomic int file_state[TS_FILES];
static char file_path[TS_FILES][TS_PATH];
static _Atomic int record_state;
// Set by ts_cleanup_run; `creating` counts ts_cleanup_create calls in flight.
static _Atomic int dying;
static _Atomic int creating;
static char record_path[TS_PATH];

int ts_proc_stat(int pid, uint64_t *start_time, char *state) {
    char path[32] = "/proc/";
    // No snprintf: it is not async-signal-safe.
    char digits[12];
    int n = 0;
    unsigned v = (unsigned)pid;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v && n < 11);
    int k = 6;
    while (n) path[k++] = digits[--n];
    memcpy(path + k, "/stat", 6);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char buf[1024];
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0) return -ESRCH;
    buf[len] = 0;
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    char *p = NULL;
    for (ssize_t i = len - 1; i >= 0; i--) if (buf[i] == ')') { p = buf + i + 1; break; }
    if (!p) return -EINVAL;
    int field = 2;
    uint64_t start = 0;
    char st = '?';
    while (*p && field < 22) {
        while (*p == ' ') p++;
        field++;
        if (field == 3) st = *p;
        if (field == 22) {
            while (*p >= '0' && *p <= '9') start = start * 10 + (uint64_t)(*p++ - '0');
            break;
        }
        while (*p && *p != ' ') p++;
    }
    if (field != 22) return -EINVAL;
    if (start_time) *start_time = start;
    if (state) *state = st;
    return 0;
}

void ts_cleanup_set_record(const char *path) {
    atomic_store(&record_state, 0);
    if (!path || strlen(path) >= TS_PATH) return;
    strcpy(record_path, path);
    atomic_store(&record_state, 2);
}

int ts_cleanup_track_pid(int pid, uint64_t start_time) {
    for (int i = 0; i < TS_PIDS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&pid_slot[i], &expected, -1)) {
            atomic_store(&pid_start[i], start_time);
            atomic_store(&pid_slot[i], pid);
            return 0;
        }
    }
    return -ENOSPC;
}

void ts_cleanup_untrack_pid(int pid) {
    for (int i = 0; i < TS_PIDS; i++) {
        int expected = pid;
        if (atomic_compare_exchange_strong(&pid_slot[i], &expected, 0)) return;
    }
}

int ts_cleanup_track_file(const char *path) {
    if (strlen(path) >= TS_PATH) return -ENAMETOOLONG;
    for (int i = 0; i < TS_FILES; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&file_state[i], &expected, 1)) {
            strcpy(file_path[i], path);
            atomic_store(&file_state[i], 2);
            return i;
        }
    }
    return -ENOSPC;
}

void ts_cleanup_untrack_file(int slot) {
    if (slot >= 0 && slot < TS_FILES) atomic_store(&file_state[slot], 0);
}

int ts_cleanup_create(const char *path, int mode) {
    // Counted before `dying` is read: either the cleanup sees this creation and waits for it (the file then
    // exists when it unlinks), or this call sees `dying` and creates nothing.
    atomic_fetch_add(&creating, 1);
    int fd;
    if (atomic_load(&dying)) fd = -ECANCELED;
    else {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
        if (fd < 0) fd = -errno;
    }
    atomic_fetch_sub(&creating, 1);
    return fd;
}

void ts_cleanup_run(void) {
    atomic_store(&dying, 1);
    // At most 200 ms: if the signal interrupted a creation on this very thread it never completes, and that
    // thread creates nothing after this handler's _exit.
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 200 && atomic_load(&creating) > 0; i++) nanosleep(&ms, NULL);
    for (int i = 0; i < TS_PIDS; i++) {
        int pid = atomic_load(&pid_slot[i]);
        if (pid <= 0) continue;
        uint64_t start = 0;
        char st = 0;
        // By pid, and only if it is still the process that was started (a reaped pid may be reused).
        // Its process group first (ts_spawn makes each program lead one): what it started goes with it.
        if (ts_proc_stat(pid, &start, &st) == 0 && start == atomic_load(&pid_start[i]) && st != 'Z') {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
    }
    for (int i = 0; i < TS_FILES; i++) {
        if (atomic_load(&file_state[i]) == 2) unlink(file_path[i]);
    }
    if (atomic_exchange(&record_state, 0) == 2) unlink(record_path);
}

int ts_open_tmpfile(const char *dir) {
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}
