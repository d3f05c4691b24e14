#define _GNU_SOURCE
#include "cnetshim.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <linux/if_tun.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/inet_diag.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/veth.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>

int ts_unshare_net(void) { return unshare(CLONE_NEWNET) == 0 ? 0 : -errno; }
int ts_open_thread_netns(void) {
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}
int ts_setns_net(int fd) { return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno; }
int ts_gettid(void) { return (int)syscall(SYS_gettid); }

// ---------------------------------------------------------------------------------------------------------
// rtnetlink: one request, one acknowledgment.

struct req {
    struct nlmsghdr n;
    union {
        struct ifinfomsg i;
        struct ifaddrmsg a;
        struct ndmsg nd;
    } u;
    char buf[1024];
};

static struct rtattr *add_attr(struct nlmsghdr *n, size_t max, int type, const void *data, size_t len) {
    size_t alen = RTA_LENGTH(len);
    if (NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(alen) > max) return NULL;
    struct rtattr *rta = (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = alen;
    if (len) memcpy(RTA_DATA(rta), data, len);
    n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(alen);
    return rta;
}

static void end_nest(struct nlmsghdr *n, struct rtattr *nest) {
    nest->rta_len = (char *)n + NLMSG_ALIGN(n->nlmsg_len) - (char *)nest;
}

int ts_rtnl_open(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -errno;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

// The netlink exchange both rtnetlink and sock_diag use: a request to the kernel, then batches of replies,
// matched to the request by sequence number (per thread: each namespace thread has its own sockets).
static uint32_t nl_next_seq(void) {
    static __thread uint32_t seq;
    return ++seq;
}

static int nl_send(int fd, const struct nlmsghdr *n) {
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    return sendto(fd, n, n->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
}

// One batch of replies: its length, or -errno.
static ssize_t nl_recv(int fd, char *buf, size_t cap) {
    for (;;) {
        ssize_t len = recv(fd, buf, cap, 0);
        if (len >= 0 || errno != EINTR) return len < 0 ? -errno : len;
    }
}

static int talk(int nl, struct nlmsghdr *n) {
    n->nlmsg_seq = nl_next_seq();
    n->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    int rc = nl_send(nl, n);
    if (rc < 0) return rc;
    char buf[8192];
    for (;;) {
        ssize_t len = nl_recv(nl, buf, sizeof buf);
        if (len < 0) return (int)len;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_seq != n->nlmsg_seq) continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = (struct nlmsgerr *)NLMSG_DATA(h);
                return e->error;  // 0 is the acknowledgment
            }
        }
    }
}

int ts_veth_create(int nl, const char *name, const char *peer, int peer_netns_fd) {
    struct req r;
    memset(&r, 0, sizeof r);
    r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    r.n.nlmsg_type = RTM_NEWLINK;
    r.n.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    r.u.i.ifi_family = AF_UNSPEC;
    add_attr(&r.n, sizeof r, IFLA_IFNAME, name, strlen(name) + 1);
    struct rtattr *linkinfo = add_attr(&r.n, sizeof r, IFLA_LINKINFO, NULL, 0);
    add_attr(&r.n, sizeof r, IFLA_INFO_KIND, "veth", 4);
    struct rtattr *data = add_attr(&r.n, sizeof r, IFLA_INFO_DATA, NULL, 0);
    struct rtattr *peerinfo = add_attr(&r.n, sizeof r, VETH_INFO_PEER, NULL, 0);
    // The peer's ifinfomsg comes first inside VETH_INFO_PEER.
    r.n.nlmsg_len += sizeof(struct ifinfomsg);
    memset(RTA_DATA(peerinfo), 0, sizeof(struct ifinfomsg));
    add_attr(&r.n, sizeof r, IFLA_IFNAME, peer, strlen(peer) + 1);
    if (peer_netns_fd >= 0) {
        uint32_t fd = (uint32_t)peer_netns_fd;
        add_attr(&r.n, sizeof r, IFLA_NET_NS_FD, &fd, sizeof fd);
    }
    end_nest(&r.n, peerinfo);
    end_nest(&r.n, data);
    end_nest(&r.n, linkinfo);
    return talk(nl, &r.n);
}

int ts_link_delete(int nl, int ifindex) {
    struct req r;
    memset(&r, 0, sizeof r);
    r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    r.n.nlmsg_type = RTM_DELLINK;
    r.u.i.ifi_family = AF_UNSPEC;
    r.u.i.ifi_index = ifindex;
    return talk(nl, &r.n);
}

int ts_link_index(const char *name) {
    unsigned idx = if_nametoindex(name);
    return idx ? (int)idx : -errno;
}

int ts_link_set(int nl, int ifindex, int up, const uint8_t *mac6, int mtu) {
    struct req r;
    memset(&r, 0, sizeof r);
    r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    r.n.nlmsg_type = RTM_NEWLINK;
    r.u.i.ifi_family = AF_UNSPEC;
    r.u.i.ifi_index = ifindex;
    r.u.i.ifi_change = IFF_UP;
    r.u.i.ifi_flags = up ? IFF_UP : 0;
    if (mac6) add_attr(&r.n, sizeof r, IFLA_ADDRESS, mac6, 6);
    if (mtu > 0) {
        uint32_t m = (uint32_t)mtu;
        add_attr(&r.n, sizeof r, IFLA_MTU, &m, sizeof m);
    }
    return talk(nl, &r.n);
}

int ts_addr_add(int nl, int ifindex, int family, const uint8_t *addr, int prefixlen, int nodad) {
    struct req r;
    memset(&r, 0, sizeof r);
    r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    r.n.nlmsg_type = RTM_NEWADDR;
    r.n.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    r.u.a.ifa_family = family;
    r.u.a.ifa_prefixlen = prefixlen;
    r.u.a.ifa_index = ifindex;
    if (nodad) r.u.a.ifa_flags = IFA_F_NODAD;
    size_t len = family == AF_INET6 ? 16 : 4;
    add_attr(&r.n, sizeof r, IFA_LOCAL, addr, len);
    add_attr(&r.n, sizeof r, IFA_ADDRESS, addr, len);
    if (nodad) {
        uint32_t flags = IFA_F_NODAD;
        add_attr(&r.n, sizeof r, IFA_FLAGS, &flags, sizeof flags);
    }
    return talk(nl, &r.n);
}

int ts_neigh_add(int nl, int ifindex, int family, const uint8_t *addr, const uint8_t *mac6) {
    struct req r;
    memset(&r, 0, sizeof r);
    r.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
    r.n.nlmsg_type = RTM_NEWNEIGH;
    r.n.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
    r.u.nd.ndm_family = family;
    r.u.nd.ndm_ifindex = ifindex;
    r.u.nd.ndm_state = NUD_PERMANENT;
    add_attr(&r.n, sizeof r, NDA_DST, addr, family == AF_INET6 ? 16 : 4);
    add_attr(&r.n, sizeof r, NDA_LLADDR, mac6, 6);
    return talk(nl, &r.n);
}

// One SIOCGIF* query of an interface by name: 0 or -errno, the answer in *ifr.
static int ifreq_query(const char *name, unsigned long request, struct ifreq *ifr) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    memset(ifr, 0, sizeof *ifr);
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(fd, request, ifr);
    int e = errno;
    close(fd);
    return rc < 0 ? -e : 0;
}

int ts_link_mac(const char *name, uint8_t *mac6) {
    struct ifreq ifr;
    int rc = ifreq_query(name, SIOCGIFHWADDR, &ifr);
    if (rc < 0) return rc;
    memcpy(mac6, ifr.ifr_hwaddr.sa_data, 6);
    return 0;
}

int ts_link_flags(const char *name) {
    struct ifreq ifr;
    int rc = ifreq_query(name, SIOCGIFFLAGS, &ifr);
    return rc < 0 ? rc : (ifr.ifr_flags & 0xffff);
}

// ---------------------------------------------------------------------------------------------------------
// sock_diag

int ts_diag_open(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    return fd >= 0 ? fd : -errno;
}

static void fill_sock(struct ts_tcp_sock *s, const struct nlmsghdr *h, const struct inet_diag_msg *m) {
    memset(s, 0, sizeof *s);
    s->family = m->idiag_family;
    s->state = m->idiag_state;
    memcpy(s->src, m->id.idiag_src, 16);
    memcpy(s->dst, m->id.idiag_dst, 16);
    s->sport = ntohs(m->id.idiag_sport);
    s->dport = ntohs(m->id.idiag_dport);
    s->rqueue = m->idiag_rqueue;
    s->wqueue = m->idiag_wqueue;
    s->inode = m->idiag_inode;
    int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type != INET_DIAG_INFO) continue;
        struct tcp_info ti;
        memset(&ti, 0, sizeof ti);
        size_t n = RTA_PAYLOAD(a) < sizeof ti ? RTA_PAYLOAD(a) : sizeof ti;
        memcpy(&ti, RTA_DATA(a), n);
        s->snd_mss = ti.tcpi_snd_mss;
        s->rcv_mss = ti.tcpi_rcv_mss;
        s->unacked = ti.tcpi_unacked;
        s->retransmits = ti.tcpi_retransmits;
        s->snd_wnd = ti.tcpi_snd_wnd;
    }
}

// One sock_diag request: a dump of every TCP socket of the family (dump = 1), or the socket of one 4-tuple. Fills
// out[0..<capacity] and returns how many sockets answered, or -errno (ENOENT for a lookup is 0 sockets).
static int diag_query(int diag_fd, int family, int dump, const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport,
                      struct ts_tcp_sock *out, int capacity) {
    struct {
        struct nlmsghdr n;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof req);
    req.n.nlmsg_len = sizeof req;
    req.n.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.n.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
    req.n.nlmsg_seq = nl_next_seq();
    req.r.sdiag_family = family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0u;
    req.r.idiag_ext = 1 << (INET_DIAG_INFO - 1);
    if (!dump) {
        size_t alen = family == AF_INET6 ? 16 : 4;
        req.r.id.idiag_sport = htons(sport);
        req.r.id.idiag_dport = htons(dport);
        memcpy(req.r.id.idiag_src, src, alen);
        memcpy(req.r.id.idiag_dst, dst, alen);
        req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
        req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    }
    int rc = nl_send(diag_fd, &req.n);
    if (rc < 0) return rc;
    int count = 0;
    char buf[32768];
    for (;;) {
        ssize_t len = nl_recv(diag_fd, buf, sizeof buf);
        if (len < 0) return (int)len;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_seq != req.n.nlmsg_seq) continue;
            if (h->nlmsg_type == NLMSG_DONE) return count;
            if (h->nlmsg_type == NLMSG_ERROR) {
                int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
                return e == -ENOENT ? 0 : e;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
            if (count < capacity) fill_sock(&out[count], h, (struct inet_diag_msg *)NLMSG_DATA(h));
            count++;
            if (!dump) return count;  // a lookup answers with one message and no NLMSG_DONE
        }
    }
}

int ts_tcp_dump(int diag_fd, int family, struct ts_tcp_sock *out, int capacity) {
    return diag_query(diag_fd, family, 1, NULL, 0, NULL, 0, out, capacity);
}

int ts_tcp_lookup(int diag_fd, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport,
                  struct ts_tcp_sock *out) {
    return diag_query(diag_fd, family, 0, src, sport, dst, dport, out, 1);
}

// ---------------------------------------------------------------------------------------------------------

int ts_tun_open(const char *name, int tap) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int ts_tun_create_persistent(const char *name, int tap) {
    int fd = ts_tun_open(name, tap);
    if (fd < 0) return fd;
    int rc = ioctl(fd, TUNSETPERSIST, 1) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int ts_spawn(const char *path, char *const argv[], char *const envp[], const char *dir, int in_fd, int out_fd, int err_fd) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        return -e;
    }
    if (pid == 0) {
        // Only async-signal-safe calls from here to execve: the parent has other threads.
        int e = 0;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) e = errno;
        if (!e && getppid() != parent) _exit(0);  // the parent died already
        // Its own process group: whatever it starts (a shell's children) is ended with it, by the group.
        if (!e && setpgid(0, 0) < 0) e = errno;
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (!e && dup2(in_fd, 0) < 0) e = errno;
        if (!e && dup2(out_fd, 1) < 0) e = errno;
        if (!e && dup2(err_fd, 2) < 0) e = errno;
        if (!e && dir && chdir(dir) < 0) e = errno;
        if (!e) {
            execve(path, argv, envp);
            e = errno;
        }
        (void)!write(report[1], &e, sizeof e);
        _exit(127);
    }
    close(report[1]);
    int e = 0;
    ssize_t n;
    do { n = read(report[0], &e, sizeof e); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == sizeof e && e != 0) {
        int status;
        waitpid(pid, &status, 0);
        return -e;
    }
    return pid;
}

int ts_set_linger(int fd, int on, int seconds) {
    struct linger l = {.l_onoff = on, .l_linger = seconds};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0 ? 0 : -errno;
}

int ts_tcp_state_of(int fd) {
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) return -errno;
    return ti.tcpi_state;
}

int ts_accept_nonblock(int fd) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return c >= 0 ? c : -errno;
}

int ts_offloads_off(const char *name) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    // Segmentation before checksums before scatter-gather: the kernel refuses them in the other order.
    const uint32_t cmds[] = {ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO, ETHTOOL_STXCSUM, ETHTOOL_SRXCSUM, ETHTOOL_SSG};
    int rc = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        struct ethtool_value v = {.cmd = cmds[i], .data = 0};
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
        ifr.ifr_data = (void *)&v;
        if (ioctl(fd, SIOCETHTOOL, &ifr) < 0 && errno != EOPNOTSUPP) rc = -errno;
    }
    close(fd);
    return rc;
}

int ts_packet_socket(int ifindex) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int ts_pin_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}

int ts_route_quickack(int nl, int family, const uint8_t *dst, int prefixlen, int ifindex) {
    struct {
        struct nlmsghdr n;
        struct rtmsg r;
        char buf[256];
    } req;
    memset(&req, 0, sizeof req);
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    req.n.nlmsg_type = RTM_NEWROUTE;
    req.n.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
    req.r.rtm_family = family;
    req.r.rtm_dst_len = prefixlen;
    req.r.rtm_table = RT_TABLE_MAIN;
    req.r.rtm_protocol = RTPROT_KERNEL;
    req.r.rtm_scope = RT_SCOPE_LINK;
    req.r.rtm_type = RTN_UNICAST;
    add_attr(&req.n, sizeof req, RTA_DST, dst, family == AF_INET6 ? 16 : 4);
    uint32_t oif = (uint32_t)ifindex;
    add_attr(&req.n, sizeof req, RTA_OIF, &oif, sizeof oif);
    struct rtattr *metrics = add_attr(&req.n, sizeof req, RTA_METRICS, NULL, 0);
    uint32_t one = 1;
    add_attr(&req.n, sizeof req, RTAX_QUICKACK, &one, sizeof one);
    end_nest(&req.n, metrics);
    return talk(nl, &req.n);
}
