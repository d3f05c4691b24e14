// How much batching saves on sock_diag state lookups (docs/perf-fuzz.md, "Next" 2): 64 exact lookups a round
// one by one (as ts_tcp_lookup does, with and without tcp_info), then as one sendto of 64 requests answered by
// 64 recv or by recvmmsg. Runs in a network namespace of its own (root): 64 listeners on 127.0.0.1.
//   gcc -O2 -o /tmp/sd scripts/sockdiag-batch.c && sudo /tmp/sd
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <time.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <net/if.h>
#include <sys/ioctl.h>

#define N 64
struct req { struct nlmsghdr n; struct inet_diag_req_v2 r; };
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void fill(struct req *q, int port, int ext, int seq) {
    memset(q, 0, sizeof *q);
    q->n.nlmsg_len = sizeof *q; q->n.nlmsg_type = SOCK_DIAG_BY_FAMILY; q->n.nlmsg_flags = NLM_F_REQUEST; q->n.nlmsg_seq = seq;
    q->r.sdiag_family = AF_INET; q->r.sdiag_protocol = IPPROTO_TCP; q->r.idiag_states = ~0u;
    q->r.idiag_ext = ext ? 1 << (INET_DIAG_INFO - 1) : 0;
    q->r.id.idiag_sport = htons(port); q->r.id.idiag_dport = htons(30000 + (port - 10000));
    inet_pton(AF_INET, "127.0.0.1", q->r.id.idiag_src); inet_pton(AF_INET, "127.0.0.2", q->r.id.idiag_dst);
    q->r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE; q->r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
}
int main(void) {
    if (unshare(CLONE_NEWNET) < 0) { perror("unshare"); return 1; }
    int s = socket(AF_INET, SOCK_DGRAM, 0); struct ifreq ifr = {0}; strcpy(ifr.ifr_name, "lo");
    ioctl(s, SIOCGIFFLAGS, &ifr); ifr.ifr_flags |= IFF_UP; ioctl(s, SIOCSIFFLAGS, &ifr);
    for (int i = 0; i < N; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(10000 + i)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (bind(fd, (void *)&a, sizeof a) < 0 || listen(fd, 64) < 0) { perror("listen"); return 1; }
    }
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    static char buf[N][8192];
    int rounds = 5000, seq = 1;
    for (int mode = 0; mode < 4; mode++) {
        double best = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now(); int found = 0;
            for (int r = 0; r < rounds; r++) {
                if (mode <= 1) {  // one request, one reply at a time (as ts_tcp_lookup does), with or without tcp_info
                    for (int i = 0; i < N; i++) {
                        struct req q; fill(&q, 10000 + i, mode == 0, seq++);
                        sendto(nl, &q, sizeof q, 0, (void *)&sa, sizeof sa);
                        ssize_t len = recv(nl, buf[0], sizeof buf[0], 0);
                        struct nlmsghdr *h = (void *)buf[0]; if (len > 0 && h->nlmsg_type == SOCK_DIAG_BY_FAMILY) found++;
                    }
                } else {  // all 64 requests in one sendto; replies by recv each (2) or one recvmmsg (3); no tcp_info
                    struct req q[N]; for (int i = 0; i < N; i++) fill(&q[i], 10000 + i, 0, seq++);
                    sendto(nl, q, sizeof q, 0, (void *)&sa, sizeof sa);
                    if (mode == 2) {
                        for (int i = 0; i < N; i++) { ssize_t len = recv(nl, buf[0], sizeof buf[0], 0); struct nlmsghdr *h = (void *)buf[0]; if (len > 0 && h->nlmsg_type == SOCK_DIAG_BY_FAMILY) found++; }
                    } else {
                        struct mmsghdr m[N]; struct iovec v[N];
                        for (int i = 0; i < N; i++) { v[i].iov_base = buf[i]; v[i].iov_len = sizeof buf[i]; memset(&m[i], 0, sizeof m[i]); m[i].msg_hdr.msg_iov = &v[i]; m[i].msg_hdr.msg_iovlen = 1; }
                        int got = 0;
                        while (got < N) { int k = recvmmsg(nl, m + got, N - got, 0, NULL); if (k <= 0) break; for (int i = got; i < got + k; i++) { struct nlmsghdr *h = (void *)buf[i]; if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY) found++; } got += k; }
                    }
                }
            }
            double dt = (now() - t0) / rounds * 1e6; if (dt < best) best = dt;
            if (found != rounds * N) fprintf(stderr, "mode %d: found %d of %d\n", mode, found, rounds * N);
        }
        const char *names[] = {"64 lookups one by one, tcp_info asked (as now)", "64 lookups one by one, no tcp_info", "64 requests in one sendto, 64 recv, no tcp_info", "64 requests in one sendto, recvmmsg, no tcp_info"};
        printf("%7.1f µs a round (%.2f µs a lookup): %s\n", best, best / N, names[mode]);
    }
    return 0;
}
