// Forwarders for the libpcap functions tcpspec uses, resolved with dlopen/dlsym on first use (see cpcap.h).
// Plain C, one file: a harness may compile every .c here with -I Sources/CPcap/include and link -ldl.
#include "cpcap.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define TSP_PCAP_FUNCTIONS(X) \
    X(pcap_create) X(pcap_set_snaplen) X(pcap_set_immediate_mode) X(pcap_set_buffer_size) X(pcap_set_timeout) \
    X(pcap_activate) X(pcap_setdirection) X(pcap_compile) X(pcap_freecode) X(pcap_setfilter) X(pcap_setnonblock) \
    X(pcap_get_selectable_fd) X(pcap_datalink) X(pcap_close) X(pcap_inject) X(pcap_next_ex) X(pcap_geterr) \
    X(pcap_open_offline) X(pcap_fopen_offline) X(pcap_lib_version)

#define TSP_POINTER(name) static __typeof__(&name) p_##name;
TSP_PCAP_FUNCTIONS(TSP_POINTER)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];
static int loaded;

static void load(void) {
    static const char *const names[] = {"libpcap.so.0.8", "libpcap.so.1", "libpcap.so"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++) {
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        // The first name's failure is the one to report: it is the library the distribution package installs.
        if (!h && i == 0) snprintf(load_error, sizeof load_error, "dlopen %s: %s", names[i], dlerror());
    }
    if (!h) return;
#define TSP_RESOLVE(name)                                                                          \
    p_##name = (__typeof__(&name))dlsym(h, #name);                                                 \
    if (!p_##name) {                                                                               \
        snprintf(load_error, sizeof load_error, "libpcap lacks %s: %s", #name, dlerror());         \
        return;                                                                                    \
    }
    TSP_PCAP_FUNCTIONS(TSP_RESOLVE)
    loaded = 1;
}

static int ready(void) {
    pthread_once(&once, load);
    return loaded;
}

int tsp_pcap_load(char *err, int size) {
    if (ready()) return 0;
    if (err && size > 0) snprintf(err, (size_t)size, "%s", load_error);
    return -1;
}

// Without the library the entry points that open a handle fail with the loader's message; the others are only
// reachable with a handle, so they never run unloaded (they still return an error rather than crash).
pcap_t *pcap_create(const char *source, char *errbuf) {
    if (!ready()) {
        if (errbuf) snprintf(errbuf, PCAP_ERRBUF_SIZE, "libpcap is not loaded (%s)", load_error);
        return NULL;
    }
    return p_pcap_create(source, errbuf);
}

pcap_t *pcap_open_offline(const char *path, char *errbuf) {
    if (!ready()) {
        if (errbuf) snprintf(errbuf, PCAP_ERRBUF_SIZE, "libpcap is not loaded (%s)", load_error);
        return NULL;
    }
    return p_pcap_open_offline(path, errbuf);
}

pcap_t *pcap_fopen_offline(FILE *f, char *errbuf) {
    if (!ready()) {
        if (errbuf) snprintf(errbuf, PCAP_ERRBUF_SIZE, "libpcap is not loaded (%s)", load_error);
        return NULL;
    }
    return p_pcap_fopen_offline(f, errbuf);
}

const char *pcap_lib_version(void) { return ready() ? p_pcap_lib_version() : "libpcap not loaded"; }

int pcap_set_snaplen(pcap_t *p, int n) { return ready() ? p_pcap_set_snaplen(p, n) : PCAP_ERROR; }
int pcap_set_immediate_mode(pcap_t *p, int on) { return ready() ? p_pcap_set_immediate_mode(p, on) : PCAP_ERROR; }
int pcap_set_buffer_size(pcap_t *p, int n) { return ready() ? p_pcap_set_buffer_size(p, n) : PCAP_ERROR; }
int pcap_set_timeout(pcap_t *p, int ms) { return ready() ? p_pcap_set_timeout(p, ms) : PCAP_ERROR; }
int pcap_activate(pcap_t *p) { return ready() ? p_pcap_activate(p) : PCAP_ERROR; }
int pcap_setdirection(pcap_t *p, pcap_direction_t d) { return ready() ? p_pcap_setdirection(p, d) : PCAP_ERROR; }
int pcap_compile(pcap_t *p, struct bpf_program *prog, const char *expr, int optimize, bpf_u_int32 mask) {
    return ready() ? p_pcap_compile(p, prog, expr, optimize, mask) : PCAP_ERROR;
}
void pcap_freecode(struct bpf_program *prog) {
    if (ready()) p_pcap_freecode(prog);
}
int pcap_setfilter(pcap_t *p, struct bpf_program *prog) { return ready() ? p_pcap_setfilter(p, prog) : PCAP_ERROR; }
int pcap_setnonblock(pcap_t *p, int on, char *errbuf) { return ready() ? p_pcap_setnonblock(p, on, errbuf) : PCAP_ERROR; }
int pcap_get_selectable_fd(pcap_t *p) { return ready() ? p_pcap_get_selectable_fd(p) : PCAP_ERROR; }
int pcap_datalink(pcap_t *p) { return ready() ? p_pcap_datalink(p) : PCAP_ERROR; }
void pcap_close(pcap_t *p) {
    if (ready()) p_pcap_close(p);
}
int pcap_inject(pcap_t *p, const void *buf, size_t size) { return ready() ? p_pcap_inject(p, buf, size) : PCAP_ERROR; }
int pcap_next_ex(pcap_t *p, struct pcap_pkthdr **hdr, const u_char **data) {
    return ready() ? p_pcap_next_ex(p, hdr, data) : PCAP_ERROR;
}
char *pcap_geterr(pcap_t *p) {
    static char unloaded[] = "libpcap is not loaded";
    return ready() ? p_pcap_geterr(p) : unloaded;
}
