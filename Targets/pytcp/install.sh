#!/bin/sh
# Installs PyTCP (PyPI pmd-pytcp 0.3.8) into .venv beside this script, for agent.py.
# Idempotent: does nothing when .venv already has that version. The venv is built under another name and
# renamed into place only once PyTCP imports, so a failed install never leaves a .venv/bin/python behind
# (tcpspec takes that file as "installed").
# Environment: PYTHON (default python3; PyTCP 0.3.8 runs on 3.9+, checked on 3.11).
set -eu

PKG=pmd-pytcp
VERSION=0.3.8
DIR=$(cd "$(dirname "$0")" && pwd)
VENV="$DIR/.venv"
TMP="$DIR/.venv.partial"
PY=${PYTHON:-python3}

fail() {
    echo "pytcp install: $*" >&2
    rm -rf "$TMP"
    exit 1
}

check() { # the venv's python imports the wanted PyTCP version
    "$1/bin/python" -c "import pmd_pytcp, sys; sys.exit(pmd_pytcp.__version__ != '$VERSION')" 2>/dev/null
}

if [ -x "$VENV/bin/python" ] && check "$VENV"; then
    exit 0
fi

command -v "$PY" >/dev/null 2>&1 || fail "no '$PY' on PATH (set PYTHON to a Python 3.9+ interpreter)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null ||
    fail "$("$PY" -V 2>&1) is too old: PyTCP needs Python 3.9 or newer (set PYTHON)"

rm -rf "$TMP"
"$PY" -m venv "$TMP" >/dev/null 2>&1 ||
    fail "'$PY -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
"$TMP/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$PKG==$VERSION" ||
    fail "pip could not install $PKG==$VERSION (is PyPI reachable? proxy settings?)"
check "$TMP" || fail "$PKG $VERSION installed but 'import pmd_pytcp' fails"

rm -rf "$VENV"
mv "$TMP" "$VENV" || fail "could not move the venv into $VENV"
