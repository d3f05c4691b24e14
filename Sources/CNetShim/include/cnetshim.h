// The few Linux interfaces Swift's Glibc module does not import: network namespaces, rtnetlink for veth pairs,
// addresses and neighbours, NETLINK_SOCK_DIAG for the kernel's TCP state, and TUN/TAP. Each function returns
// 0 (or a non-negative value) on success and -errno on failure; none keeps state.
#ifndef CNETSHIM_H
#define CNETSHIM_H

#include <stdint.h>
#include <stddef.h>

// Namespaces: these act on the calling thread only.
int ts_unshare_net(void);
int ts_open_thread_netns(void);
int ts_setns_net(int fd);
int ts_gettid(void);

// rtnetlink, in the calling thread's network namespace (at the time the socket was opened).
int ts_rtnl_open(void);
int ts_veth_create(int nl, const char *name, const char *peer, int peer_netns_fd);
int ts_link_delete(int nl, int ifindex);
int ts_link_index(const char *name);
int ts_link_set(int nl, int ifindex, int up, const uint8_t *mac6, int mtu);
int ts_addr_add(int nl, int ifindex, int family, const uint8_t *addr, int prefixlen, int nodad);
int ts_neigh_add(int nl, int ifindex, int family, const uint8_t *addr, const uint8_t *mac6);
int ts_link_mac(const char *name, uint8_t *mac6);
/* The interface's flags (SIOCGIFFLAGS), or -errno. */
int ts_link_flags(const char *name);
// Turns the link's checksum, segmentation and scatter-gather offloads off (ethtool -K NAME tx off tso off
// gso off gro off sg off), so that what the capture sees is what the wire carries.
int ts_offloads_off(const char *name);

// The kernel's view of one TCP socket (NETLINK_SOCK_DIAG, inet_diag with INET_DIAG_INFO).
struct ts_tcp_sock {
    int family;
    int state;              // TCP_ESTABLISHED (1) ... TCP_NEW_SYN_RECV (12), <linux/tcp.h> numbering
    uint8_t src[16];
    uint8_t dst[16];
    uint16_t sport;         // host order
    uint16_t dport;
    uint32_t rqueue;
    uint32_t wqueue;
    uint32_t inode;
    uint32_t snd_wnd;       // tcp_info, 0 when the kernel lacks the field
    uint32_t snd_mss;
    uint32_t rcv_mss;
    uint32_t unacked;
    uint32_t retransmits;
};

int ts_diag_open(void);
// Dumps the TCP sockets of `family` (AF_INET / AF_INET6) into out[0..<capacity]; returns how many there are
// (possibly more than capacity) or -errno.
int ts_tcp_dump(int diag_fd, int family, struct ts_tcp_sock *out, int capacity);

// The socket the kernel would deliver a segment of this 4-tuple to (established, time-wait, request, or else the
// listener of the port): 1 and *out filled, 0 when there is none, or -errno. Ports in host order.
int ts_tcp_lookup(int diag_fd, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport,
                  struct ts_tcp_sock *out);

// TUN/TAP: opens /dev/net/tun and attaches to (or creates) `name`; tap = 1 for Ethernet frames.
int ts_tun_open(const char *name, int tap);
// Creates `name` as a persistent TUN/TAP device (it outlives this descriptor, and goes with its namespace) and
// closes it, so that a stack started later can attach to it by name. 0 or -errno.
int ts_tun_create_persistent(const char *name, int tap);

// Starts `path` (an absolute path) with argv/envp in `dir`, its stdin/stdout/stderr on the given descriptors,
// in the calling thread's network namespace, with PR_SET_PDEATHSIG = SIGKILL (it dies with the thread that
// started it, even when tcpspec is killed) and default signal dispositions. The pid, or -errno (an exec failure
// is reported through a close-on-exec pipe, not as a child that exits 127).
int ts_spawn(const char *path, char *const argv[], char *const envp[], const char *dir, int in_fd, int out_fd, int err_fd);

// Socket options Swift cannot spell portably.
int ts_set_linger(int fd, int on, int seconds);
int ts_tcp_state_of(int fd);
int ts_accept_nonblock(int fd);

// Pins the calling thread to one CPU: frames injected and sent from one CPU are processed in order.
int ts_pin_cpu(int cpu);

// Sets RTAX_QUICKACK on the connected route of `ifindex` (ip route replace PREFIX dev IF quickack 1): the
// stack then acknowledges at once instead of delaying ACKs, which makes its replies deterministic.
int ts_route_quickack(int nl, int family, const uint8_t *dst, int prefixlen, int ifindex);

// A raw AF_PACKET socket bound to one interface, not seeing its own sends (for the link benchmark's baseline).
int ts_packet_socket(int ifindex);

// The run registry's stateful part (cleanup slots for the signal handler), kept apart.
#include "ts_cleanup.h"

#endif
