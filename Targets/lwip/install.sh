#!/bin/sh
# Builds the tcpspec agent for lwIP 2.1.3 (agent.c) against Debian's liblwip-dev into build/lwip-agent.
# Idempotent: does nothing when build/lwip-agent is newer than agent.c. Installs liblwip-dev with apt-get when
# its headers or library are missing and this runs as root; otherwise fails naming the package. The agent is
# compiled under another name and renamed into place only on success, so a failed build never leaves a
# build/lwip-agent behind (tcpspec takes that file as "installed").
# Environment: CC (default cc).
set -eu

PKG=liblwip-dev
DIR=$(cd "$(dirname "$0")" && pwd)
OUT="$DIR/build/lwip-agent"
TMP="$DIR/build/.lwip-agent.partial.$$"
CC=${CC:-cc}

fail() {
    echo "lwip install: $*" >&2
    rm -f "$TMP"
    exit 1
}

if [ -x "$OUT" ] && [ "$OUT" -nt "$DIR/agent.c" ]; then
    exit 0
fi

have_lwip() { # pkg-config knows lwip, its headers (with the package's lwipopts.h) and library are there
    command -v pkg-config >/dev/null 2>&1 && pkg-config --exists lwip || return 1
    inc=$(pkg-config --variable=includedir lwip)
    lib=$(pkg-config --variable=libdir lwip)
    [ -f "$inc/lwipopts.h" ] && [ -f "$inc/lwip/tcp.h" ] && [ -e "$lib/liblwip.so" ]
}

if ! have_lwip; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "lwip install: installing $PKG (and pkg-config) with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "$PKG" pkg-config >&2 ||
            { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "$PKG" pkg-config >&2; } ||
            fail "apt-get could not install $PKG"
    else
        fail "lwIP's headers and library are missing: install the Debian package $PKG (and pkg-config), e.g. 'apt-get install $PKG pkg-config' as root"
    fi
    have_lwip || fail "$PKG is installed but 'pkg-config lwip', lwipopts.h, lwip/tcp.h or liblwip.so is missing"
fi

VERSION=$(pkg-config --modversion lwip 2>/dev/null || echo unknown)
case "$VERSION" in
2.1.3*) ;;
*) echo "lwip install: warning: pkg-config says lwip $VERSION; this agent is written for 2.1.3" >&2 ;;
esac

command -v "$CC" >/dev/null 2>&1 || fail "no C compiler '$CC' on PATH (apt-get install gcc, or set CC)"
mkdir -p "$DIR/build"
rm -f "$TMP"
# shellcheck disable=SC2046 # pkg-config's flags are meant to be split
"$CC" -O2 -g -Wall -Wextra -Werror $(pkg-config --cflags lwip) -o "$TMP" "$DIR/agent.c" $(pkg-config --libs lwip) ||
    fail "compiling agent.c failed"
mv -f "$TMP" "$OUT" || fail "could not move the agent into $OUT"
