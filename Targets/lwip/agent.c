/*
 * tcpspec agent for lwIP 2.1.3 (Debian liblwip-dev): runs the stack in this process on the TAP device tcpspec
 * made and serves docs/agent-protocol.md (JSON lines: requests on stdin, answers on stdout, logs on stderr).
 *
 * lwIP is used through its raw API only, on one thread: lwip_init() here, then a poll loop that feeds frames
 * from the device to the netif, reads requests, and runs sys_check_timeouts(). No tcpip_init, netconn or
 * sockets. Built against the package's own headers (its lwipopts.h: NO_SYS 0, LWIP_CALLBACK_API, SO_REUSE,
 * LWIP_WND_SCALE with TCP_RCV_SCALE 1, TCP_WND 0xFFFF, libc malloc for every pool) so that struct layouts match
 * the shared library.
 *
 * lwIP facts this file relies on (from lwIP 2.1.3's src/core, and checked on the wire):
 * - output is synchronous: tcp_output() and tcp_rst() reach netif->linkoutput before they return, so once a
 *   call or an input frame has been handled, what it made the stack send is on the device ("settle");
 * - an ACK for in-order data is only flagged (TF_ACK_DELAY) and sent by the 250 ms fast timer or with the next
 *   segment; after each input frame the agent sends those at once (setting "tcp.delayed_ack" = false);
 * - retransmissions, persist probes, the SYN-RECEIVED, FIN-WAIT-2 and TIME-WAIT timeouts all run off the
 *   500 ms slow timer, which sys_check_timeouts() runs on lwIP's clock, sys_now(). This file defines sys_now()
 *   itself: the library calls it through its PLT, so this definition is the one lwIP uses (checked at start),
 *   and setting "clock.slowdown" = N makes lwIP's clock run N times slower than real time;
 * - callbacks (err, recv, accept, connected) name our own objects through tcp_arg; lwIP frees a pcb silently
 *   when a TIME-WAIT ends, or after a LAST-ACK it reached with its receive side shut (no err callback), so every
 *   pcb the agent holds is checked against lwIP's lists after each entry into the stack (sweep()).
 *
 * Static neighbour: the package is built without ETHARP_SUPPORT_STATIC_ENTRIES (no etharp_add_static_entry in
 * the library), so the netif's IPv4 output is the agent's own: packets to TCPSPEC_PEER_IP get the Ethernet
 * header for TCPSPEC_PEER_MAC through ethernet_output() and never touch the ARP table; anything else (never
 * seen) goes through etharp_output(). The link-up flag is set directly rather than by netif_set_link_up(), which
 * would announce the address with a gratuitous ARP: nothing but TCP (and answers to what the tester sends) goes
 * on the wire.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lwip/init.h"
#include "lwip/memp.h"
#include "lwip/priv/memp_priv.h"
#include "lwip/ip.h"
#include "lwip/ip4.h"
#include "lwip/etharp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#define AGENT "lwip-agent"
#define MAX_LINE (16u << 20)  /* a request line longer than this is refused (stderr, exit 1) */
#define FRAME_MAX 65600

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(AGENT ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(AGENT ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    exit(code);
}

/* ------------------------------------------------------------------------------------------------------------
 * lwIP's clock. The library's sys_now() (its port's sys_arch.c) is replaced by this one (symbol interposition:
 * every call to sys_now in liblwip.so goes through its PLT). Real monotonic milliseconds since start, divided
 * by the "clock.slowdown" setting.
 * ---------------------------------------------------------------------------------------------------------- */
static uint64_t clock_start_ms;
static uint32_t slowdown = 1;
static unsigned long sys_now_calls;

static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

u32_t sys_now(void)
{
    sys_now_calls++;
    return (u32_t)((real_ms() - clock_start_ms) / slowdown);
}

/* ------------------------------------------------------------------------------------------------------------
 * A small JSON reader: enough for flat request objects, the `conns` array of pairs and the settings object.
 * Never reads past the NUL-terminated line; depth and sizes are bounded; every failure is a message.
 * ---------------------------------------------------------------------------------------------------------- */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
    enum jtype type;
    int boolean;
    int is_int;          /* J_NUM: an integer that fits in long long */
    long long num;
    const char *str;     /* J_STR: decoded, NUL-terminated (may contain NULs: see len) */
    size_t len;
    const char *key;     /* member of an object: its decoded name */
    size_t keylen;
    struct jv *child;    /* J_ARR/J_OBJ: first element or member */
    struct jv *next;
};

struct jblock {
    struct jblock *next;
    size_t used;
    struct jv nodes[256];
};

struct jparser {
    const char *p;
    const char *end;
    char *strbuf;        /* decoded strings, bump-allocated (never more than the line's length) */
    size_t strused, strcap;
    struct jblock *blocks;
    const char *error;
    int depth;
};

static struct jv *jnew(struct jparser *ps)
{
    if (ps->blocks == NULL || ps->blocks->used == sizeof ps->blocks->nodes / sizeof ps->blocks->nodes[0]) {
        struct jblock *b = calloc(1, sizeof *b);
        if (b == NULL) {
            ps->error = "out of memory";
            return NULL;
        }
        b->next = ps->blocks;
        ps->blocks = b;
    }
    struct jv *v = &ps->blocks->nodes[ps->blocks->used++];
    memset(v, 0, sizeof *v);
    return v;
}

static void jfree(struct jparser *ps)
{
    while (ps->blocks != NULL) {
        struct jblock *n = ps->blocks->next;
        free(ps->blocks);
        ps->blocks = n;
    }
    free(ps->strbuf);
    ps->strbuf = NULL;
}

static void jskip(struct jparser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n'))
        ps->p++;
}

static int jhex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int jhex4(struct jparser *ps, unsigned *out)
{
    if (ps->end - ps->p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = jhex(ps->p[i]);
        if (h < 0) return -1;
        v = v * 16u + (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return 0;
}

static void jput(struct jparser *ps, char c)
{
    /* strcap is the line's length + 1: a decoded string and its NUL never outgrow the quotes they came from */
    if (ps->strused < ps->strcap) ps->strbuf[ps->strused++] = c;
}

static int jstring(struct jparser *ps, const char **out, size_t *len)
{
    /* at the opening quote */
    ps->p++;
    size_t start = ps->strused;
    while (1) {
        if (ps->p >= ps->end) {
            ps->error = "unterminated string";
            return -1;
        }
        unsigned char c = (unsigned char)*ps->p++;
        if (c == '"') break;
        if (c < 0x20) {
            ps->error = "control character in a string";
            return -1;
        }
        if (c != '\\') {
            jput(ps, (char)c);
            continue;
        }
        if (ps->p >= ps->end) {
            ps->error = "unterminated string";
            return -1;
        }
        char e = *ps->p++;
        unsigned cp;
        switch (e) {
        case '"': jput(ps, '"'); break;
        case '\\': jput(ps, '\\'); break;
        case '/': jput(ps, '/'); break;
        case 'b': jput(ps, '\b'); break;
        case 'f': jput(ps, '\f'); break;
        case 'n': jput(ps, '\n'); break;
        case 'r': jput(ps, '\r'); break;
        case 't': jput(ps, '\t'); break;
        case 'u':
            if (jhex4(ps, &cp) < 0) {
                ps->error = "bad \\u escape";
                return -1;
            }
            if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                const char *save = ps->p;
                unsigned lo;
                ps->p += 2;
                if (jhex4(ps, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000u + ((cp - 0xD800u) << 10) + (lo - 0xDC00u);
                else
                    ps->p = save;
            }
            /* UTF-8; an escape is 6 source bytes, its encoding at most 4 */
            if (cp < 0x80) {
                jput(ps, (char)cp);
            } else if (cp < 0x800) {
                jput(ps, (char)(0xC0 | (cp >> 6)));
                jput(ps, (char)(0x80 | (cp & 0x3F)));
            } else if (cp < 0x10000) {
                jput(ps, (char)(0xE0 | (cp >> 12)));
                jput(ps, (char)(0x80 | ((cp >> 6) & 0x3F)));
                jput(ps, (char)(0x80 | (cp & 0x3F)));
            } else {
                jput(ps, (char)(0xF0 | (cp >> 18)));
                jput(ps, (char)(0x80 | ((cp >> 12) & 0x3F)));
                jput(ps, (char)(0x80 | ((cp >> 6) & 0x3F)));
                jput(ps, (char)(0x80 | (cp & 0x3F)));
            }
            break;
        default:
            ps->error = "bad escape in a string";
            return -1;
        }
    }
    *len = ps->strused - start;
    jput(ps, '\0');
    *out = ps->strbuf + start;
    return 0;
}

static int jnumber(struct jparser *ps, struct jv *v)
{
    const char *s = ps->p;
    int neg = 0;
    if (ps->p < ps->end && *ps->p == '-') {
        neg = 1;
        ps->p++;
    }
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
        ps->error = "bad number";
        return -1;
    }
    unsigned long long mag = 0;
    int overflow = 0;
    if (*ps->p == '0') {
        ps->p++;
    } else {
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            unsigned d = (unsigned)(*ps->p - '0');
            if (mag > (ULLONG_MAX - d) / 10u) overflow = 1;
            else mag = mag * 10u + d;
            ps->p++;
        }
    }
    int integer = 1;
    if (ps->p < ps->end && *ps->p == '.') {
        integer = 0;
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
            ps->error = "bad number";
            return -1;
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integer = 0;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
            ps->error = "bad number";
            return -1;
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    (void)s;
    v->type = J_NUM;
    if (integer && !overflow && (neg ? mag <= (unsigned long long)LLONG_MAX + 1ull : mag <= (unsigned long long)LLONG_MAX)) {
        v->is_int = 1;
        v->num = neg ? (mag == (unsigned long long)LLONG_MAX + 1ull ? LLONG_MIN : -(long long)mag) : (long long)mag;
    }
    return 0;
}

static int jliteral(struct jparser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        ps->error = "unexpected character";
        return -1;
    }
    ps->p += n;
    return 0;
}

static struct jv *jvalue(struct jparser *ps)
{
    jskip(ps);
    if (ps->p >= ps->end) {
        ps->error = "unexpected end of line";
        return NULL;
    }
    if (++ps->depth > 32) {
        ps->error = "nested too deep";
        return NULL;
    }
    struct jv *v = jnew(ps);
    if (v == NULL) return NULL;
    char c = *ps->p;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        v->type = obj ? J_OBJ : J_ARR;
        ps->p++;
        jskip(ps);
        struct jv **tail = &v->child;
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
            ps->p++;
        } else {
            while (1) {
                const char *key = NULL;
                size_t keylen = 0;
                if (obj) {
                    jskip(ps);
                    if (ps->p >= ps->end || *ps->p != '"') {
                        ps->error = "expected a member name";
                        return NULL;
                    }
                    if (jstring(ps, &key, &keylen) < 0) return NULL;
                    jskip(ps);
                    if (ps->p >= ps->end || *ps->p != ':') {
                        ps->error = "expected ':'";
                        return NULL;
                    }
                    ps->p++;
                }
                struct jv *item = jvalue(ps);
                if (item == NULL) return NULL;
                item->key = key;
                item->keylen = keylen;
                *tail = item;
                tail = &item->next;
                jskip(ps);
                if (ps->p < ps->end && *ps->p == ',') {
                    ps->p++;
                    continue;
                }
                if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
                    ps->p++;
                    break;
                }
                ps->error = obj ? "expected ',' or '}'" : "expected ',' or ']'";
                return NULL;
            }
        }
    } else if (c == '"') {
        v->type = J_STR;
        if (jstring(ps, &v->str, &v->len) < 0) return NULL;
    } else if (c == 't') {
        v->type = J_BOOL;
        v->boolean = 1;
        if (jliteral(ps, "true") < 0) return NULL;
    } else if (c == 'f') {
        v->type = J_BOOL;
        if (jliteral(ps, "false") < 0) return NULL;
    } else if (c == 'n') {
        v->type = J_NULL;
        if (jliteral(ps, "null") < 0) return NULL;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        if (jnumber(ps, v) < 0) return NULL;
    } else {
        ps->error = "unexpected character";
        return NULL;
    }
    ps->depth--;
    return v;
}

/* Parses one line (len bytes at text) as one JSON value; NULL and ps->error on failure. */
static struct jv *jparse(struct jparser *ps, const char *text, size_t len)
{
    memset(ps, 0, sizeof *ps);
    ps->p = text;
    ps->end = text + len;
    ps->strcap = len + 1;
    ps->strbuf = malloc(ps->strcap);
    if (ps->strbuf == NULL) {
        ps->error = "out of memory";
        return NULL;
    }
    struct jv *v = jvalue(ps);
    if (v == NULL) return NULL;
    jskip(ps);
    if (ps->p != ps->end) {
        ps->error = "trailing characters after the JSON value";
        return NULL;
    }
    return v;
}

static struct jv *jget(const struct jv *obj, const char *key)
{
    if (obj == NULL || obj->type != J_OBJ) return NULL;
    size_t n = strlen(key);
    for (struct jv *m = obj->child; m != NULL; m = m->next)
        if (m->keylen == n && memcmp(m->key, key, n) == 0) return m;
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------------
 * Output: answers on stdout, one line each.
 * ---------------------------------------------------------------------------------------------------------- */
struct buf {
    char *data;
    size_t len, cap;
};

static void bgrow(struct buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) die(1, "out of memory");
    b->data = d;
    b->cap = cap;
}

static void bputs(struct buf *b, const char *s, size_t n)
{
    bgrow(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    bgrow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void bjstring(struct buf *b, const char *s)
{
    bputs(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            bputs(b, e, 2);
        } else if (*p < 0x20) {
            bprintf(b, "\\u%04x", *p);
        } else {
            bputs(b, (const char *)p, 1);
        }
    }
    bputs(b, "\"", 1);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {.fd = fd, .events = POLLOUT};
                poll(&pf, 1, 100);
                continue;
            }
            die(1, "cannot write to stdout: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
}

static int answer_fd = 1;  /* the protocol's stdout; fd 1 itself is pointed at stderr (see main) */

static void send_line(struct buf *b)
{
    bputs(b, "\n", 1);
    write_all(answer_fd, b->data, b->len);
    b->len = 0;
}

/* ------------------------------------------------------------------------------------------------------------
 * The link: TAP device, netif.
 * ---------------------------------------------------------------------------------------------------------- */
static int tap_fd = -1;
static int tun_mode;  /* TCPSPEC_LINK = tun: raw IP packets, no Ethernet */
static struct netif nif;
static ip4_addr_t my_ip4, peer_ip4;
static ip_addr_t my_ip, peer_ip;
static struct eth_addr my_mac, peer_mac;
static unsigned mtu = 1500;
static unsigned char frame[FRAME_MAX];
static unsigned char outframe[FRAME_MAX];  /* > 0xFFFF: any pbuf chain fits */
static unsigned long frames_in, frames_out;

static void tap_write(const void *data, size_t len)
{
    while (1) {
        ssize_t w = write(tap_fd, data, len);
        if (w >= 0) {
            frames_out++;
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
            struct pollfd pf = {.fd = tap_fd, .events = POLLOUT};
            poll(&pf, 1, 50);
            continue;
        }
        logf_("write to the device failed: %s (frame of %zu octets dropped)", strerror(errno), len);
        return;
    }
}

/* netif->linkoutput (TAP) and netif->output (TUN): the whole pbuf chain, one write. */
static err_t link_write(struct pbuf *p)
{
    u16_t n = pbuf_copy_partial(p, outframe, p->tot_len, 0);
    tap_write(outframe, n);
    return ERR_OK;
}

static err_t tap_linkoutput(struct netif *netif, struct pbuf *p)
{
    (void)netif;
    return link_write(p);
}

/* IPv4 output on the TAP: the tester is a static neighbour (no ARP on the wire, see the header comment). */
static err_t tap_output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *next_hop)
{
    if (ip4_addr_cmp(next_hop, &peer_ip4))
        return ethernet_output(netif, p, (const struct eth_addr *)netif->hwaddr, &peer_mac, ETHTYPE_IP);
    return etharp_output(netif, p, next_hop);
}

static err_t tun_output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *next_hop)
{
    (void)netif;
    (void)next_hop;
    return link_write(p);
}

static err_t netif_setup(struct netif *netif)
{
    netif->name[0] = 't';
    netif->name[1] = tun_mode ? 'u' : 'p';
    netif->mtu = (u16_t)mtu;
    if (tun_mode) {
        netif->output = tun_output4;
        netif->flags = 0;
    } else {
        netif->output = tap_output4;
        netif->linkoutput = tap_linkoutput;
        netif->hwaddr_len = ETH_HWADDR_LEN;
        memcpy(netif->hwaddr, my_mac.addr, ETH_HWADDR_LEN);
        /* neither NETIF_FLAG_UP nor NETIF_FLAG_LINK_UP yet: see open_link() */
        netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    }
    return ERR_OK;
}

static int parse_mac(const char *s, struct eth_addr *out)
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6) return -1;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255) return -1;
        out->addr[i] = (u8_t)v[i];
    }
    return 0;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return (v != NULL && *v != '\0') ? v : dflt;
}

static const char *env_req(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') die(2, "missing environment variable %s", name);
    return v;
}

static unsigned device_mtu(const char *ifname)
{
    const char *e = getenv("TCPSPEC_MTU");
    if (e != NULL && *e != '\0') {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end != '\0' || v < 576 || v > 65535) die(2, "TCPSPEC_MTU=%s is not an MTU (576...65535)", e);
        return (unsigned)v;
    }
    /* tcpspec sets the device's MTU from [link] mtu but passes no variable: ask the device. */
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s >= 0) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
        int ok = ioctl(s, SIOCGIFMTU, &ifr) == 0;
        close(s);
        if (ok && ifr.ifr_mtu >= 576 && ifr.ifr_mtu <= 65535) return (unsigned)ifr.ifr_mtu;
    }
    return 1500;
}

static void open_link(void)
{
    const char *ifname = env_or("TCPSPEC_IFACE", "tcpspec-tap");
    const char *link = env_or("TCPSPEC_LINK", "tap");
    const char *ip = env_req("TCPSPEC_IP");
    const char *peer = env_req("TCPSPEC_PEER_IP");
    if (strchr(ip, ':') != NULL || strchr(peer, ':') != NULL)
        die(2, "IPv6 is not supported by this agent (TCPSPEC_IP=%s): use [link] ip = 4 in the target description", ip);
    if (strcmp(link, "tap") == 0) tun_mode = 0;
    else if (strcmp(link, "tun") == 0) tun_mode = 1;
    else die(2, "TCPSPEC_LINK must be tap or tun, not '%s'", link);
    if (strlen(ifname) >= IFNAMSIZ) die(2, "TCPSPEC_IFACE '%s' is longer than an interface name", ifname);
    if (!ip4addr_aton(ip, &my_ip4)) die(2, "TCPSPEC_IP=%s is not an IPv4 address", ip);
    if (!ip4addr_aton(peer, &peer_ip4)) die(2, "TCPSPEC_PEER_IP=%s is not an IPv4 address", peer);
    ip_addr_copy_from_ip4(my_ip, my_ip4);
    ip_addr_copy_from_ip4(peer_ip, peer_ip4);
    const char *pfx = env_or("TCPSPEC_PREFIX", "24");
    char *end;
    long prefix = strtol(pfx, &end, 10);
    if (*end != '\0' || prefix < 0 || prefix > 32) die(2, "TCPSPEC_PREFIX=%s is not an IPv4 prefix length", pfx);
    ip4_addr_t mask, gw;
    ip4_addr_set_u32(&mask, prefix == 0 ? 0 : lwip_htonl(0xFFFFFFFFu << (32 - prefix)));
    ip4_addr_set_zero(&gw);
    if (!tun_mode) {
        if (parse_mac(env_req("TCPSPEC_MAC"), &my_mac) < 0) die(2, "TCPSPEC_MAC=%s is not a MAC address", getenv("TCPSPEC_MAC"));
        if (parse_mac(env_req("TCPSPEC_PEER_MAC"), &peer_mac) < 0) die(2, "TCPSPEC_PEER_MAC=%s is not a MAC address", getenv("TCPSPEC_PEER_MAC"));
    }
    mtu = device_mtu(ifname);

    tap_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (tap_fd < 0) die(2, "cannot open /dev/net/tun: %s", strerror(errno));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = (short)((tun_mode ? IFF_TUN : IFF_TAP) | IFF_NO_PI);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    if (ioctl(tap_fd, TUNSETIFF, &ifr) < 0) die(2, "TUNSETIFF %s on %s: %s", tun_mode ? "IFF_TUN" : "IFF_TAP", ifname, strerror(errno));

    if (netif_add(&nif, &my_ip4, &mask, &gw, NULL, netif_setup, tun_mode ? ip_input : ethernet_input) == NULL)
        die(2, "netif_add failed");
    netif_set_default(&nif);
    netif_set_up(&nif);  /* link still down: no announcement */
    nif.flags |= NETIF_FLAG_LINK_UP;  /* not netif_set_link_up(): that would send a gratuitous ARP */
}

/* One frame from the device into lwIP, in one PBUF_RAM pbuf of its exact size. Not PBUF_POOL: in this build of
 * the library the PBUF_POOL pool's elements are 616 octets (memp_pools[MEMP_PBUF_POOL]->size, 592 for data)
 * while pbuf_alloc() fills each pool pbuf of a chain with up to PBUF_POOL_BUFSIZE = 1536 octets, so any frame
 * longer than 592 octets overflows the heap (the package's tapif has the same fault). check_pools() checks
 * the sizes at start. */
static void input_frame(const unsigned char *data, size_t len)
{
    if (len == 0 || len > 0xFFFF || (!tun_mode && len < 14)) return;
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
    if (p == NULL) {
        logf_("pbuf_alloc(%zu) failed: frame dropped", len);
        return;
    }
    if (pbuf_take(p, data, (u16_t)len) != ERR_OK) {
        pbuf_free(p);
        return;
    }
    frames_in++;
    if (nif.input(p, &nif) != ERR_OK) pbuf_free(p);
}

/* ------------------------------------------------------------------------------------------------------------
 * Settings (TCPSPEC_SETTINGS)
 * ---------------------------------------------------------------------------------------------------------- */
static int opt_delayed_ack = 1;  /* lwIP's default: ACK in-order data from the 250 ms fast timer */
static int opt_nodelay = 0;      /* lwIP's default: Nagle on */
/* Faults for tcpspec's own tests (never in Targets/lwip.toml): frames the agent discards at its start, as a device
 * that reports itself running before frames pass does; a crash (abort) on a frame longer than this; and a hang (the
 * agent stops reading, answering and running timers, as a stack stuck in a loop does) on a frame longer than this. */
static long test_drop_first = 0;
static long test_crash_longer = 0;
static long test_hang_longer = 0;

static void apply_settings(void)
{
    const char *text = getenv("TCPSPEC_SETTINGS");
    if (text == NULL || *text == '\0') return;
    struct jparser ps;
    struct jv *root = jparse(&ps, text, strlen(text));
    if (root == NULL || root->type != J_OBJ)
        die(2, "TCPSPEC_SETTINGS is not a JSON object: %s", root == NULL ? ps.error : "not an object");
    for (struct jv *m = root->child; m != NULL; m = m->next) {
        if (strcmp(m->key, "tcp.delayed_ack") == 0) {
            if (m->type != J_BOOL) die(2, "setting tcp.delayed_ack is a boolean");
            opt_delayed_ack = m->boolean;
        } else if (strcmp(m->key, "tcp.nodelay") == 0) {
            if (m->type != J_BOOL) die(2, "setting tcp.nodelay is a boolean");
            opt_nodelay = m->boolean;
        } else if (strcmp(m->key, "test.drop_first_frames") == 0) {
            if (m->type != J_NUM || !m->is_int || m->num < 0) die(2, "setting test.drop_first_frames is a count");
            test_drop_first = (long)m->num;
        } else if (strcmp(m->key, "test.crash_on_frame_longer_than") == 0) {
            if (m->type != J_NUM || !m->is_int || m->num < 1) die(2, "setting test.crash_on_frame_longer_than is a length");
            test_crash_longer = (long)m->num;
        } else if (strcmp(m->key, "test.hang_on_frame_longer_than") == 0) {
            if (m->type != J_NUM || !m->is_int || m->num < 1) die(2, "setting test.hang_on_frame_longer_than is a length");
            test_hang_longer = (long)m->num;
        } else if (strcmp(m->key, "clock.slowdown") == 0) {
            if (m->type != J_NUM || !m->is_int || m->num < 1 || m->num > 1000000)
                die(2, "setting clock.slowdown is an integer in 1...1000000");
            slowdown = (uint32_t)m->num;
        } else {
            logf_("ignoring unknown setting '%s'", m->key);
        }
    }
    jfree(&ps);
}

/* ------------------------------------------------------------------------------------------------------------
 * Connections named by (port, peer): a listener (the lwIP listen pcb, with the children its accept callback
 * handed over and the application has not taken yet) and the connected socket.
 * ---------------------------------------------------------------------------------------------------------- */
struct conn;

struct sock {
    struct conn *conn;
    struct tcp_pcb *pcb;   /* NULL once lwIP freed it, or the agent let go of it */
    struct sock *next;     /* accept queue / orphan list */
    struct sock *all_prev, *all_next;  /* every sock holding a pcb's callbacks (see sweep) */
    size_t rx;             /* octets received and not read yet (the data itself is not kept: recv counts) */
    int eof;               /* end of stream: FIN received, or the connection ended quietly */
    int err;               /* an errno to report once (ECONNRESET, ECONNREFUSED, ECONNABORTED) */
    int connected;         /* handshake done (connected callback, or accepted) */
    int wr_shut, rd_shut;
    int linger0;           /* SO_LINGER 0: close is abortive */
    uint16_t rport;        /* the peer's port (kept: the pcb may go) */
};

struct conn {
    uint16_t port, peer;
    struct tcp_pcb *lpcb;  /* listener */
    struct sock *queue;    /* established children not yet accepted, in order */
    struct sock *sock;     /* the connection */
    struct sock *orphans;  /* earlier connections replaced by a new connect/accept (still open, as on Linux) */
    int nodelay;           /* TCP_NODELAY for this connection's sockets */
    int keepalive;
    struct conn *hnext;
};

#define NBUCKETS 4096
static struct conn *table[NBUCKETS];
static struct sock *all_socks;

static unsigned hash(uint16_t port, uint16_t peer) { return ((unsigned)port * 31u + peer) % NBUCKETS; }

static struct conn *conn_find(uint16_t port, uint16_t peer)
{
    for (struct conn *c = table[hash(port, peer)]; c != NULL; c = c->hnext)
        if (c->port == port && c->peer == peer) return c;
    return NULL;
}

static struct conn *conn_get(uint16_t port, uint16_t peer)
{
    struct conn *c = conn_find(port, peer);
    if (c != NULL) return c;
    c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->port = port;
    c->peer = peer;
    c->nodelay = opt_nodelay;
    unsigned h = hash(port, peer);
    c->hnext = table[h];
    table[h] = c;
    return c;
}

static void conn_unlink(struct conn *c)
{
    for (struct conn **pp = &table[hash(c->port, c->peer)]; *pp != NULL; pp = &(*pp)->hnext)
        if (*pp == c) {
            *pp = c->hnext;
            return;
        }
}

static void all_add(struct sock *s)
{
    s->all_prev = NULL;
    s->all_next = all_socks;
    if (all_socks) all_socks->all_prev = s;
    all_socks = s;
}

static void all_del(struct sock *s)
{
    if (s->all_prev) s->all_prev->all_next = s->all_next;
    else if (all_socks == s) all_socks = s->all_next;
    if (s->all_next) s->all_next->all_prev = s->all_prev;
    s->all_prev = s->all_next = NULL;
}

/* lwIP callbacks ------------------------------------------------------------------------------------------- */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct sock *s = arg;
    (void)err;
    if (p == NULL) {  /* FIN: end of stream after what is buffered */
        if (s != NULL) s->eof = 1;
        return ERR_OK;
    }
    if (s == NULL) {  /* a pcb the agent let go of (lwIP normally aborts those before calling): consume */
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
        return ERR_OK;
    }
    s->rx += p->tot_len;  /* tcp_recved when the application reads (recv) */
    pbuf_free(p);
    return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
    struct sock *s = arg;
    if (s == NULL) return;
    s->pcb = NULL;  /* lwIP has freed it */
    all_del(s);
    switch (err) {
    case ERR_RST: s->err = s->connected ? ECONNRESET : ECONNREFUSED; break;
    case ERR_CLSD: s->eof = 1; break;  /* LAST-ACK done after shutdown(wr): closed normally */
    case ERR_ABRT: s->err = s->connected ? ECONNABORTED : ETIMEDOUT; break;
    default: s->err = ECONNABORTED; break;
    }
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct sock *s = arg;
    (void)pcb;
    (void)err;
    if (s != NULL) s->connected = 1;
    return ERR_OK;
}

static void attach(struct sock *s, struct tcp_pcb *pcb)
{
    s->pcb = pcb;
    tcp_arg(pcb, s);
    tcp_recv(pcb, on_recv);
    tcp_err(pcb, on_err);
    if (s->conn->nodelay) tcp_nagle_disable(pcb);
    else tcp_nagle_enable(pcb);
    all_add(s);
}

/* Lets go of the pcb (it stays in lwIP): no more callbacks into s. */
static struct tcp_pcb *detach(struct sock *s)
{
    struct tcp_pcb *pcb = s->pcb;
    if (pcb != NULL) {
        tcp_arg(pcb, NULL);
        tcp_err(pcb, NULL);
        tcp_recv(pcb, on_recv);
        tcp_sent(pcb, NULL);
        s->pcb = NULL;
        all_del(s);
    }
    return pcb;
}

static err_t on_accept(void *arg, struct tcp_pcb *newpcb, err_t err)
{
    struct conn *c = arg;
    if (err != ERR_OK || newpcb == NULL || c == NULL) return ERR_VAL;  /* lwIP aborts the child */
    struct sock *s = calloc(1, sizeof *s);
    if (s == NULL) return ERR_MEM;
    s->conn = c;
    s->connected = 1;
    s->rport = newpcb->remote_port;
    attach(s, newpcb);
    struct sock **tail = &c->queue;
    while (*tail != NULL) tail = &(*tail)->next;
    *tail = s;
    return ERR_OK;
}

/* After lwIP ran (a frame, a call, the timers): forget pcbs lwIP freed without a callback (a TIME-WAIT that
 * ended; a LAST-ACK completed with the receive side shut). Nothing is allocated between such a free and this
 * sweep, so a pointer still in lwIP's lists is the same pcb. */
static int pcb_in(struct tcp_pcb *list, struct tcp_pcb *pcb)
{
    for (; list != NULL; list = list->next)
        if (list == pcb) return 1;
    return 0;
}

static void sweep(void)
{
    struct sock *s = all_socks;
    while (s != NULL) {
        struct sock *next = s->all_next;
        if (s->pcb != NULL && !pcb_in(tcp_active_pcbs, s->pcb) && !pcb_in(tcp_tw_pcbs, s->pcb) &&
            !pcb_in(tcp_bound_pcbs, s->pcb)) {
            s->pcb = NULL;
            s->eof = 1;
            all_del(s);
        }
        s = next;
    }
}

/* Sends every ACK lwIP is holding for its fast timer (tcp.delayed_ack = false). */
static void flush_acks(void)
{
    if (opt_delayed_ack) return;
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
        if (pcb->flags & TF_ACK_DELAY) {
            tcp_ack_now(pcb);
            tcp_output(pcb);
        }
    }
}

/* After any entry into lwIP: its output is already on the device (synchronous); send held ACKs, then
 * forget freed pcbs. */
static void settle(void)
{
    flush_acks();
    sweep();
}

/* Requests --------------------------------------------------------------------------------------------------- */

struct reply {
    int kind;     /* 0 ok, 1 errno, 2 error text, 3 states (already in out) */
    long long ok;
    int err;
    char text[256];
};

static const char *errno_name(int e)
{
    switch (e) {
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EPIPE: return "EPIPE";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETUNREACH: return "ENETUNREACH";
    case ECONNABORTED: return "ECONNABORTED";
    case ECONNRESET: return "ECONNRESET";
    case ENOBUFS: return "ENOBUFS";
    case EISCONN: return "EISCONN";
    case ENOTCONN: return "ENOTCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EALREADY: return "EALREADY";
    case EINPROGRESS: return "EINPROGRESS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    default: return "EINVAL";
    }
}

static int errno_of(err_t e)
{
    switch (e) {
    case ERR_MEM: case ERR_BUF: return ENOBUFS;
    case ERR_TIMEOUT: return ETIMEDOUT;
    case ERR_RTE: return EHOSTUNREACH;
    case ERR_INPROGRESS: return EINPROGRESS;
    case ERR_WOULDBLOCK: return EAGAIN;
    case ERR_USE: return EADDRINUSE;
    case ERR_ALREADY: return EALREADY;
    case ERR_ISCONN: return EISCONN;
    case ERR_CONN: case ERR_CLSD: return ENOTCONN;
    case ERR_IF: return ENETUNREACH;
    case ERR_ABRT: return ECONNABORTED;
    case ERR_RST: return ECONNRESET;
    default: return EINVAL;
    }
}

#define OK(v) do { r->kind = 0; r->ok = (v); return; } while (0)
#define ERRNO(e) do { r->kind = 1; r->err = (e); return; } while (0)
#define FAIL(...) do { r->kind = 2; snprintf(r->text, sizeof r->text, __VA_ARGS__); return; } while (0)

/* Closes a socket as close(2) would (SO_LINGER 0: abortively); the sock is gone afterwards. */
static void sock_close(struct sock *s, int abortive)
{
    struct tcp_pcb *pcb = detach(s);
    if (pcb != NULL) {
        if (abortive || s->linger0) {
            tcp_abort(pcb);
        } else {
            err_t e = tcp_close(pcb);
            if (e != ERR_OK) {
                logf_("tcp_close failed (%d): aborting instead", (int)e);
                tcp_abort(pcb);
            }
        }
    }
    free(s);
}

/* Closes the listener; the children its accept callback handed over and nobody accepted are reset, as a
 * Linux listener's accept queue is when it closes. */
static void listener_close(struct conn *c)
{
    if (c->lpcb != NULL) {
        tcp_arg(c->lpcb, NULL);
        tcp_accept(c->lpcb, NULL);
        if (tcp_close(c->lpcb) != ERR_OK) logf_("tcp_close of a listener failed");
        c->lpcb = NULL;
    }
    while (c->queue != NULL) {
        struct sock *s = c->queue;
        c->queue = s->next;
        sock_close(s, 1);
    }
}

static struct tcp_pcb *new_pcb(struct conn *c, err_t *err)
{
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (pcb == NULL) {
        *err = ERR_MEM;
        return NULL;
    }
    ip_set_option(pcb, SOF_REUSEADDR);
    if (c->keepalive) ip_set_option(pcb, SOF_KEEPALIVE);
    *err = tcp_bind(pcb, &my_ip, c->port);
    if (*err != ERR_OK) {
        tcp_close(pcb);  /* CLOSED, unbound: freed */
        return NULL;
    }
    return pcb;
}

static void orphan(struct conn *c, struct sock *s)
{
    if (s == NULL) return;
    s->next = c->orphans;
    c->orphans = s;
}

static void op_listen(struct conn *c, const struct jv *req, struct reply *r)
{
    if (c->lpcb != NULL) ERRNO(EISCONN);  /* the pair already has a listener */
    const struct jv *b = jget(req, "backlog");
    long long backlog = (b != NULL && b->type == J_NUM && b->is_int) ? b->num : 8;
    if (backlog < 1) backlog = 1;
    if (backlog > 255) backlog = 255;
    err_t e;
    struct tcp_pcb *pcb = new_pcb(c, &e);
    if (pcb == NULL) ERRNO(errno_of(e));
    struct tcp_pcb *l = tcp_listen_with_backlog_and_err(pcb, (u8_t)backlog, &e);
    if (l == NULL) {
        tcp_close(pcb);
        ERRNO(errno_of(e));
    }
    c->lpcb = l;
    tcp_arg(l, c);
    tcp_accept(l, on_accept);
    OK(0);
}

static void op_connect(struct conn *c, struct reply *r)
{
    if (c->sock != NULL && c->sock->pcb != NULL) ERRNO(EISCONN);  /* the pair already has a connection */
    err_t e;
    struct tcp_pcb *pcb = new_pcb(c, &e);
    if (pcb == NULL) ERRNO(errno_of(e));
    struct sock *s = calloc(1, sizeof *s);
    if (s == NULL) {
        tcp_close(pcb);
        ERRNO(ENOBUFS);
    }
    s->conn = c;
    attach(s, pcb);
    e = tcp_connect(pcb, &peer_ip, c->peer, on_connected);
    if (e != ERR_OK) {
        struct tcp_pcb *p = detach(s);
        free(s);
        tcp_close(p);  /* still CLOSED and bound: freed */
        ERRNO(errno_of(e));
    }
    orphan(c, c->sock);
    c->sock = s;
    ERRNO(EINPROGRESS);  /* the SYN is on the device: tcp_connect ran tcp_output */
}

static void op_accept(struct conn *c, struct reply *r)
{
    if (c->lpcb == NULL) ERRNO(EBADF);  /* no listener (as the Linux target answers) */
    /* the pair's own connection: one from another tester port stays pending (and is reset with the listener) */
    struct sock **pp = &c->queue;
    while (*pp != NULL && (*pp)->rport != c->peer) pp = &(*pp)->next;
    struct sock *s = *pp;
    if (s == NULL) ERRNO(EAGAIN);
    *pp = s->next;
    s->next = NULL;
    if (c->sock != NULL) sock_close(c->sock, 0);
    c->sock = s;
    listener_close(c);  /* one connection per listener */
    OK(0);
}

static char abuf[16384];

static void op_send(struct conn *c, long long n, struct reply *r)
{
    struct sock *s = c->sock;
    if (s == NULL) ERRNO(c->lpcb != NULL ? ENOTCONN : EBADF);
    if (n < 0) ERRNO(EINVAL);
    if (s->wr_shut) ERRNO(EPIPE);
    if (s->pcb == NULL) {
        if (s->err) {
            int e = s->err;
            s->err = 0;
            ERRNO(e);
        }
        ERRNO(EPIPE);
    }
    struct tcp_pcb *pcb = s->pcb;
    switch (pcb->state) {
    case SYN_SENT: case SYN_RCVD: case ESTABLISHED: case CLOSE_WAIT: break;
    case CLOSED: ERRNO(ENOTCONN);
    default: ERRNO(EPIPE);
    }
    if (n == 0) OK(0);
    long long sent = 0;
    while (sent < n) {
        u16_t room = tcp_sndbuf(pcb);
        if (room == 0) break;
        long long chunk = n - sent;
        if (chunk > room) chunk = room;
        if (chunk > (long long)sizeof abuf) chunk = sizeof abuf;
        err_t e = tcp_write(pcb, abuf, (u16_t)chunk, TCP_WRITE_FLAG_COPY);
        if (e == ERR_MEM) break;  /* send queue full */
        if (e != ERR_OK) {
            if (sent == 0) ERRNO(errno_of(e));
            break;
        }
        sent += chunk;
    }
    if (sent == 0) ERRNO(EAGAIN);
    tcp_output(pcb);
    OK(sent);
}

static void op_recv(struct conn *c, long long n, struct reply *r)
{
    struct sock *s = c->sock;
    if (s == NULL) ERRNO(c->lpcb != NULL ? ENOTCONN : EBADF);
    if (n < 0) ERRNO(EINVAL);
    if (s->rx > 0 && n > 0) {
        size_t take = (unsigned long long)n < s->rx ? (size_t)n : s->rx;
        s->rx -= take;
        /* tcp_recved opens the window again (and sends an update past TCP_WND_UPDATE_THRESHOLD); where no
         * more text can come (CLOSING, LAST-ACK, TIME-WAIT) there is no window left to open */
        if (s->pcb != NULL && s->pcb->state >= ESTABLISHED && s->pcb->state <= CLOSE_WAIT) {
            size_t left = take;
            while (left > 0) {
                u16_t k = left > 0xFFFF ? 0xFFFF : (u16_t)left;
                tcp_recved(s->pcb, k);
                left -= k;
            }
        }
        OK((long long)take);
    }
    if (n == 0) OK(0);
    if (s->rd_shut) OK(0);
    if (s->err) {
        int e = s->err;
        s->err = 0;
        ERRNO(e);
    }
    if (s->eof || s->pcb == NULL) OK(0);
    if (s->pcb->state == CLOSED) ERRNO(ENOTCONN);
    ERRNO(EAGAIN);
}

static void op_shutdown(struct conn *c, const char *how, struct reply *r)
{
    struct sock *s = c->sock;
    if (s == NULL) ERRNO(c->lpcb != NULL ? ENOTCONN : EBADF);
    int rd, wr;
    if (strcmp(how, "rd") == 0) rd = 1, wr = 0;
    else if (strcmp(how, "wr") == 0) rd = 0, wr = 1;
    else if (strcmp(how, "rdwr") == 0) rd = 1, wr = 1;
    else ERRNO(EINVAL);
    if (s->pcb == NULL) ERRNO(ENOTCONN);
    if (rd && wr) {
        /* the raw API's shutdown of both sides is tcp_close: the pcb is lwIP's from here on */
        struct tcp_pcb *pcb = detach(s);
        err_t e = tcp_shutdown(pcb, 1, 1);
        if (e != ERR_OK) {
            attach(s, pcb);
            ERRNO(errno_of(e));
        }
        s->rd_shut = s->wr_shut = 1;
        s->eof = 1;
        OK(0);
    }
    err_t e = tcp_shutdown(s->pcb, rd, wr);
    if (e != ERR_OK) ERRNO(errno_of(e));
    if (rd) s->rd_shut = 1;
    if (wr) s->wr_shut = 1;
    OK(0);
}

static void op_close(struct conn *c, int abortive, struct reply *r)
{
    if (c->sock != NULL) {
        struct sock *s = c->sock;
        c->sock = NULL;
        sock_close(s, abortive);
        OK(0);
    }
    if (c->lpcb != NULL) {
        listener_close(c);
        OK(0);
    }
    ERRNO(EBADF);
}

static void op_setsockopt(struct conn *c, const struct jv *req, struct reply *r)
{
    const struct jv *name = jget(req, "name"), *value = jget(req, "value");
    if (name == NULL || name->type != J_STR) FAIL("setsockopt needs \"name\"");
    if (value == NULL || value->type != J_NUM || !value->is_int) FAIL("setsockopt needs an integer \"value\"");
    if (c->sock == NULL && c->lpcb == NULL) ERRNO(EBADF);
    struct sock *s = c->sock;
    long long v = value->num;
    if (strcmp(name->str, "TCP_NODELAY") == 0) {
        c->nodelay = v != 0;
        if (s != NULL && s->pcb != NULL) {
            if (v) tcp_nagle_disable(s->pcb);
            else tcp_nagle_enable(s->pcb);
            tcp_output(s->pcb);  /* may release a segment Nagle held */
        }
        OK(0);
    }
    if (strcmp(name->str, "SO_KEEPALIVE") == 0) {
        c->keepalive = v != 0;
        struct tcp_pcb *p = s != NULL ? s->pcb : c->lpcb;
        if (p != NULL) {
            if (v) ip_set_option(p, SOF_KEEPALIVE);
            else ip_reset_option(p, SOF_KEEPALIVE);
        }
        OK(0);
    }
    if (strcmp(name->str, "SO_LINGER") == 0) {  /* value = seconds, on; 0: close() resets */
        if (s != NULL) s->linger0 = v == 0;
        OK(0);
    }
    if (strcmp(name->str, "SO_REUSEADDR") == 0) OK(0);  /* always on */
    ERRNO(ENOPROTOOPT);
}

/* End of a case: the listener closed, everything of this port pair dropped without a segment. */
static void op_release(uint16_t port, uint16_t peer, struct reply *r)
{
    struct conn *c = conn_find(port, peer);
    if (c != NULL) {
        if (c->lpcb != NULL) {
            tcp_arg(c->lpcb, NULL);
            tcp_accept(c->lpcb, NULL);
            tcp_close(c->lpcb);
            c->lpcb = NULL;
        }
        struct sock *lists[3] = {c->queue, c->orphans, c->sock};
        c->queue = c->orphans = c->sock = NULL;
        for (int i = 0; i < 3; i++) {
            struct sock *s = lists[i];
            while (s != NULL) {
                struct sock *next = i == 2 ? NULL : s->next;
                struct tcp_pcb *pcb = detach(s);
                if (pcb != NULL) tcp_abandon(pcb, 0);
                free(s);
                s = next;
            }
        }
        conn_unlink(c);
        free(c);
    }
    /* what the application no longer holds: closed connections (FIN-WAIT-*, CLOSING, LAST-ACK, TIME-WAIT) and
     * listener children (SYN-RECEIVED, or established after their listener closed) */
    int again = 1;
    while (again) {
        again = 0;
        struct tcp_pcb **lists[2] = {&tcp_active_pcbs, &tcp_tw_pcbs};
        for (int i = 0; i < 2 && !again; i++) {
            for (struct tcp_pcb *pcb = *lists[i]; pcb != NULL; pcb = pcb->next) {
                if (pcb->local_port == port && pcb->remote_port == peer && ip_addr_cmp(&pcb->remote_ip, &peer_ip)) {
                    if (pcb->callback_arg != NULL && pcb->errf == on_err) {
                        /* still held by a sock of another conn? (cannot happen: one conn per pair) */
                        ((struct sock *)pcb->callback_arg)->pcb = NULL;
                        all_del((struct sock *)pcb->callback_arg);
                    }
                    tcp_arg(pcb, NULL);
                    if (pcb->state != TIME_WAIT) tcp_err(pcb, NULL);
                    tcp_abandon(pcb, 0);
                    again = 1;
                    break;
                }
            }
        }
    }
    OK(0);
}

static const char *state_name(enum tcp_state s)
{
    switch (s) {
    case CLOSED: return "CLOSED";
    case LISTEN: return "LISTEN";
    case SYN_SENT: return "SYN-SENT";
    case SYN_RCVD: return "SYN-RECEIVED";
    case ESTABLISHED: return "ESTABLISHED";
    case FIN_WAIT_1: return "FIN-WAIT-1";
    case FIN_WAIT_2: return "FIN-WAIT-2";
    case CLOSE_WAIT: return "CLOSE-WAIT";
    case CLOSING: return "CLOSING";
    case LAST_ACK: return "LAST-ACK";
    case TIME_WAIT: return "TIME-WAIT";
    }
    return NULL;
}

/* The state of the pcb tcp_input() would hand this pair's segments to: active, then TIME-WAIT, then listen. */
static const char *state_of(long long port, long long peer)
{
    if (port < 0 || port > 65535 || peer < 0 || peer > 65535) return "CLOSED";
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next)
        if (pcb->local_port == port && pcb->remote_port == peer && ip_addr_cmp(&pcb->remote_ip, &peer_ip) &&
            ip_addr_cmp(&pcb->local_ip, &my_ip))
            return state_name(pcb->state);
    for (struct tcp_pcb *pcb = tcp_tw_pcbs; pcb != NULL; pcb = pcb->next)
        if (pcb->local_port == port && pcb->remote_port == peer && ip_addr_cmp(&pcb->remote_ip, &peer_ip) &&
            ip_addr_cmp(&pcb->local_ip, &my_ip))
            return state_name(pcb->state);
    for (struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs; l != NULL; l = l->next)
        if (l->local_port == port && (ip_addr_isany(&l->local_ip) || ip_addr_cmp(&l->local_ip, &my_ip)))
            return "LISTEN";
    return "CLOSED";
}

static void op_state(const struct jv *req, struct buf *out, struct reply *r)
{
    const struct jv *conns = jget(req, "conns");
    if (conns == NULL || conns->type != J_ARR) FAIL("state needs \"conns\": [[port, peer], ...]");
    for (const struct jv *pair = conns->child; pair != NULL; pair = pair->next) {
        const struct jv *a = pair->type == J_ARR ? pair->child : NULL;
        const struct jv *b = a != NULL ? a->next : NULL;
        if (a == NULL || b == NULL || b->next != NULL || a->type != J_NUM || !a->is_int || b->type != J_NUM || !b->is_int)
            FAIL("state: each of \"conns\" is [port, peer]");
    }
    bputs(out, ",\"states\":[", 11);
    int first = 1;
    for (const struct jv *pair = conns->child; pair != NULL; pair = pair->next) {
        if (!first) bputs(out, ",", 1);
        first = 0;
        bjstring(out, state_of(pair->child->num, pair->child->next->num));
    }
    bputs(out, "]", 1);
    r->kind = 3;
}

static int int_field(const struct jv *req, const char *key, long long *out, struct reply *r, long long lo, long long hi)
{
    const struct jv *v = jget(req, key);
    if (v == NULL) {
        r->kind = 2;
        snprintf(r->text, sizeof r->text, "request lacks \"%s\"", key);
        return -1;
    }
    if (v->type != J_NUM || !v->is_int) {
        r->kind = 2;
        snprintf(r->text, sizeof r->text, "\"%s\" is not an integer", key);
        return -1;
    }
    if (v->num < lo || v->num > hi) {
        r->kind = 1;
        r->err = EINVAL;
        return -1;
    }
    *out = v->num;
    return 0;
}

static void handle(const struct jv *req, const char *op, struct buf *out, struct reply *r)
{
    if (strcmp(op, "state") == 0) {
        op_state(req, out, r);
        return;
    }
    if (strcmp(op, "quit") == 0) OK(0);
    static const char *const known[] = {"listen", "accept", "connect", "send", "recv", "shutdown", "close",
                                        "abort", "release", "setsockopt"};
    int found = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(op, known[i]) == 0) found = 1;
    if (!found) FAIL("unknown op '%.100s'", op);
    long long port, peer;
    if (int_field(req, "port", &port, r, 0, 65535) < 0) return;
    if (int_field(req, "peer", &peer, r, 0, 65535) < 0) return;
    if (strcmp(op, "release") == 0) {
        op_release((uint16_t)port, (uint16_t)peer, r);
        return;
    }
    struct conn *c;
    if (strcmp(op, "listen") == 0 || strcmp(op, "connect") == 0) {
        c = conn_get((uint16_t)port, (uint16_t)peer);
        if (c == NULL) ERRNO(ENOBUFS);
    } else {
        c = conn_find((uint16_t)port, (uint16_t)peer);
        if (c == NULL) ERRNO(EBADF);
    }
    if (strcmp(op, "listen") == 0) op_listen(c, req, r);
    else if (strcmp(op, "connect") == 0) op_connect(c, r);
    else if (strcmp(op, "accept") == 0) op_accept(c, r);
    else if (strcmp(op, "send") == 0 || strcmp(op, "recv") == 0) {
        long long n;
        if (int_field(req, "n", &n, r, LLONG_MIN, LLONG_MAX) < 0) return;
        if (op[0] == 's') op_send(c, n, r);
        else op_recv(c, n, r);
    } else if (strcmp(op, "shutdown") == 0) {
        const struct jv *how = jget(req, "how");
        op_shutdown(c, (how != NULL && how->type == J_STR) ? how->str : "wr", r);
    } else if (strcmp(op, "close") == 0) op_close(c, 0, r);
    else if (strcmp(op, "abort") == 0) op_close(c, 1, r);
    else op_setsockopt(c, req, r);
}

/* Looks for "id": <integer> in a line that is not valid JSON, to answer it with an error. */
static int salvage_id(const char *line, size_t len, long long *id)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        if (memcmp(line + i, "\"id\"", 4) != 0) continue;
        size_t j = i + 4;
        while (j < len && (line[j] == ' ' || line[j] == '\t')) j++;
        if (j >= len || line[j] != ':') continue;
        j++;
        while (j < len && (line[j] == ' ' || line[j] == '\t')) j++;
        int neg = 0;
        if (j < len && line[j] == '-') neg = 1, j++;
        if (j >= len || line[j] < '0' || line[j] > '9') continue;
        long long v = 0;
        while (j < len && line[j] >= '0' && line[j] <= '9') {
            if (v > (LLONG_MAX - 9) / 10) return -1;
            v = v * 10 + (line[j] - '0');
            j++;
        }
        *id = neg ? -v : v;
        return 0;
    }
    return -1;
}

static void serve_line(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == len) return;  /* blank */
    static struct buf out;
    out.len = 0;
    struct jparser ps;
    struct jv *req = jparse(&ps, line, len);
    const struct jv *idv = req != NULL ? jget(req, "id") : NULL;
    long long id;
    if (idv != NULL && idv->type == J_NUM && idv->is_int) {
        id = idv->num;
    } else if (req == NULL && salvage_id(line, len, &id) == 0) {
        /* answered below with the parse error */
    } else {
        if (req == NULL) logf_("cannot parse a request line (%s): %.200s", ps.error, line);
        else logf_("a request without an integer \"id\": %.200s", line);
        jfree(&ps);
        fflush(stderr);
        exit(1);
    }
    bprintf(&out, "{\"id\":%lld", id);
    struct reply r;
    memset(&r, 0, sizeof r);
    const struct jv *opv = req != NULL ? jget(req, "op") : NULL;
    int quit = 0;
    if (req == NULL) {
        r.kind = 2;
        snprintf(r.text, sizeof r.text, "cannot parse the request: %s", ps.error);
    } else if (req->type != J_OBJ) {
        r.kind = 2;
        snprintf(r.text, sizeof r.text, "the request is not a JSON object");
    } else if (opv == NULL || opv->type != J_STR) {
        r.kind = 2;
        snprintf(r.text, sizeof r.text, "request lacks \"op\"");
    } else {
        quit = strcmp(opv->str, "quit") == 0;
        handle(req, opv->str, &out, &r);
        settle();
    }
    switch (r.kind) {
    case 0: bprintf(&out, ",\"ok\":%lld}", r.ok); break;
    case 1: bprintf(&out, ",\"errno\":\"%s\"}", errno_name(r.err)); break;
    case 2:
        bputs(&out, ",\"error\":", 9);
        bjstring(&out, r.text);
        bputs(&out, "}", 1);
        break;
    default: bputs(&out, "}", 1); break;
    }
    jfree(&ps);
    send_line(&out);
    if (quit) {
        fflush(stderr);
        _exit(0);  /* no teardown: it would reset every open connection on the device on the way out */
    }
}

/* ------------------------------------------------------------------------------------------------------------
 * Main loop
 * ---------------------------------------------------------------------------------------------------------- */
static char *inbuf;
static size_t inlen, incap;

static void read_requests(int *eof)
{
    if (incap - inlen < 65536) {
        size_t cap = incap ? incap * 2 : 131072;
        if (cap > MAX_LINE + 131072) cap = MAX_LINE + 131072;
        if (cap <= incap) {
            logf_("a request line longer than %u octets", MAX_LINE);
            fflush(stderr);
            exit(1);
        }
        char *b = realloc(inbuf, cap);
        if (b == NULL) die(1, "out of memory");
        inbuf = b;
        incap = cap;
    }
    ssize_t n = read(0, inbuf + inlen, incap - inlen);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) return;
        die(1, "cannot read stdin: %s", strerror(errno));
    }
    if (n == 0) {
        *eof = 1;
        if (inlen > 0) {  /* a last line without its newline still counts */
            inbuf[inlen] = '\0';  /* room: incap - inlen >= 65536 */
            serve_line(inbuf, inlen);
            inlen = 0;
        }
        return;
    }
    size_t scan = inlen;
    inlen += (size_t)n;
    size_t start = 0;
    for (size_t i = scan; i < inlen; i++) {
        if (inbuf[i] != '\n') continue;
        inbuf[i] = '\0';
        serve_line(inbuf + start, i - start);
        start = i + 1;
    }
    if (start > 0) {
        memmove(inbuf, inbuf + start, inlen - start);
        inlen -= start;
    }
    if (inlen > MAX_LINE) {
        logf_("a request line longer than %u octets", MAX_LINE);
        fflush(stderr);
        exit(1);
    }
}

static void read_frames(void)
{
    for (int k = 0; k < 256; k++) {
        ssize_t n = read(tap_fd, frame, sizeof frame);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) logf_("read from the device failed: %s", strerror(errno));
            return;
        }
        if (test_drop_first > 0) {
            test_drop_first--;
            logf_("test.drop_first_frames: dropped a %zd-byte frame", n);
            continue;
        }
        if (test_crash_longer > 0 && n > test_crash_longer) {
            logf_("test.crash_on_frame_longer_than: a %zd-byte frame, aborting", n);
            abort();
        }
        if (test_hang_longer > 0 && n > test_hang_longer) {
            logf_("test.hang_on_frame_longer_than: a %zd-byte frame, hanging", n);
            for (;;) pause();
        }
        input_frame(frame, (size_t)n);
        settle();  /* the frame's answer and any held ACK on the device before the next frame is read */
    }
}

static void run_timers(void)
{
    sys_check_timeouts();
    settle();
}

/* The structures this file shares with the library must have the library's sizes (its memory pools record
 * them): a package built with other options than its headers say would corrupt memory. */
static void check_pools(void)
{
    static const struct {
        memp_t pool;
        size_t size;
        const char *name;
    } shared[] = {
        {MEMP_TCP_PCB, LWIP_MEM_ALIGN_SIZE(sizeof(struct tcp_pcb)), "struct tcp_pcb"},
        {MEMP_TCP_PCB_LISTEN, LWIP_MEM_ALIGN_SIZE(sizeof(struct tcp_pcb_listen)), "struct tcp_pcb_listen"},
        {MEMP_TCP_SEG, LWIP_MEM_ALIGN_SIZE(sizeof(struct tcp_seg)), "struct tcp_seg"},
        {MEMP_PBUF, LWIP_MEM_ALIGN_SIZE(sizeof(struct pbuf)), "struct pbuf"},
    };
    for (size_t i = 0; i < sizeof shared / sizeof shared[0]; i++)
        if (memp_pools[shared[i].pool]->size != shared[i].size)
            die(2, "liblwip's %s is %u octets, these headers say %zu: the library was built with other options",
                shared[i].name, (unsigned)memp_pools[shared[i].pool]->size, shared[i].size);
    size_t pool = LWIP_MEM_ALIGN_SIZE(sizeof(struct pbuf)) + LWIP_MEM_ALIGN_SIZE(PBUF_POOL_BUFSIZE);
    if (memp_pools[MEMP_PBUF_POOL]->size < pool)
        logf_("note: liblwip's PBUF_POOL elements are %u octets, not %zu: pbuf_alloc(PBUF_POOL) overflows them; "
              "this agent allocates frames as PBUF_RAM", (unsigned)memp_pools[MEMP_PBUF_POOL]->size, pool);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stderr, NULL, _IOLBF, 0);
    /* liblwip prints its assertion messages (LWIP_PLATFORM_ASSERT: printf, then abort) on stdout, which would
     * put a non-protocol line before the crash: answers go to a copy of fd 1, and fd 1 becomes stderr. */
    answer_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (answer_fd < 0 || dup2(2, 1) < 0) die(1, "cannot set up stdout: %s", strerror(errno));
    memset(abuf, 'a', sizeof abuf);
    const char *ver = getenv("TCPSPEC_AGENT_VERSION");
    if (ver != NULL && strcmp(ver, "1") != 0) logf_("speaking agent protocol version 1, asked for %s", ver);

    clock_start_ms = real_ms();
    apply_settings();
    /* IPv6 is refused before the stack starts */
    const char *ip = getenv("TCPSPEC_IP");
    if (ip != NULL && strchr(ip, ':') != NULL)
        die(2, "IPv6 is not supported by this agent (TCPSPEC_IP=%s): use [link] ip = 4 in the target description", ip);

    check_pools();
    lwip_init();
    /* check that lwIP's timers read this file's clock (the library calls sys_now through its PLT) */
    unsigned long before = sys_now_calls;
    (void)sys_timeouts_sleeptime();
    if (sys_now_calls == before) {
        if (slowdown != 1) die(2, "liblwip does not call this agent's sys_now(): clock.slowdown cannot work with this build");
        logf_("liblwip does not call this agent's sys_now(): lwIP runs on its own clock");
    }
    open_link();

    struct buf hello = {0};
    bprintf(&hello, "{\"agent\":\"tcpspec\",\"version\":1,\"stack\":\"lwip %s\",\"calls\":[\"listen\",\"accept\","
                    "\"connect\",\"send\",\"recv\",\"shutdown\",\"close\",\"abort\",\"release\",\"setsockopt\"],"
                    "\"state\":true}", LWIP_VERSION_STRING);
    send_line(&hello);
    free(hello.data);

    int eof = 0;
    while (!eof) {
        u32_t sleep = sys_timeouts_sleeptime();
        int timeout = 1000;
        if (sleep != SYS_TIMEOUTS_SLEEPTIME_INFINITE && (uint64_t)sleep * slowdown < 1000u)
            timeout = (int)((uint64_t)sleep * slowdown);
        struct pollfd pf[2] = {{.fd = tap_fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
        int n = poll(pf, 2, timeout);
        if (n < 0 && errno != EINTR) die(1, "poll: %s", strerror(errno));
        if (n > 0 && (pf[0].revents & (POLLIN | POLLERR))) read_frames();
        run_timers();
        if (n > 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) read_requests(&eof);
        if (pf[0].revents & (POLLHUP | POLLNVAL)) die(1, "the device closed");
    }
    fflush(stderr);
    return 0;
}
