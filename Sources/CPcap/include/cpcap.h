// libpcap as a runtime dependency: tcpspec is not linked against libpcap (so that `tcpspec --help`, `spec` and
// `doctor` start on a machine without it). The declarations are libpcap's own (<pcap/pcap.h>, from libpcap-dev at
// build time); cpcap.c defines each function tcpspec uses as a forwarder to the library, dlopen'ed on first use.
#ifndef TCPSPEC_CPCAP_H
#define TCPSPEC_CPCAP_H

#include <pcap/pcap.h>

/// Loads libpcap (libpcap.so.0.8, then libpcap.so.1, then libpcap.so) once. Returns 0 when loaded; otherwise -1
/// with the loader's message for the first name in `err`.
int tsp_pcap_load(char *err, int size);

#endif
