#!/usr/bin/env python3
"""Regenerates the committed seed corpora Fuzz/seeds/TARGET/ from the project's real inputs.

spec-compile: the small base profiles of spec/ and its four smallest overlays.
spec:    each top-level declaration of Spec/*.tcpspec (with its indented lines) as a small overlay of rfc9293,
         each declaration of rfc793 as a small base profile (its header, states and steps, then that
         declaration), and rfc9293.tcpspec whole. Small inputs keep the compile, and so the fuzzer, fast.
case:    every Corpus/**/*.case.
segment: the first frames of Corpus/**/*.pcap, each re-framed for every link type tcpspec decodes (Ethernet,
         raw IP, Linux cooked v1 and v2, BSD loopback), the harness decoding each input as all of them.
pcap:    a few Corpus captures as they are, the same frames as pcapng (libpcap's other reader), and re-framed
         with the other link types (so the checker's link decoders are reached through libpcap too).

Also writes the libFuzzer dictionaries Fuzz/dict/spec.dict and case.dict: the words and punctuation of the
shipped specs and cases (rule ids and page numbers left out), so that mutations build real declarations.

Deterministic: running it again gives the same files.
"""
import collections
import glob
import hashlib
import os
import re
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "Fuzz", "seeds")


def reset(target):
    d = os.path.join(SEEDS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, data, name=None):
    if isinstance(data, str):
        data = data.encode()
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def blocks(text):
    """Top-level declarations: a line starting in column 1 and the indented lines under it, comments dropped."""
    out, cur = [], []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            if cur:
                out.append(cur)
            cur = [line]
        elif cur:
            cur.append(line)
    if cur:
        out.append(cur)
    return out


def spec_seeds():
    d = reset("spec")
    header = None
    for path in sorted(glob.glob(os.path.join(ROOT, "Spec", "*.tcpspec"))):
        text = open(path, encoding="utf-8").read()
        bs = blocks(text)
        if os.path.basename(path) == "rfc793.tcpspec":
            head = [b for b in bs if b[0].split()[0] in ("profile", "state", "steps")]
            header = "\n".join("\n".join(b) for b in head).replace("profile rfc793", "profile fz", 1)
            for b in bs:
                if b[0].split()[0] not in ("profile", "state", "steps"):
                    put(d, header + "\n" + "\n".join(b) + "\n")
        else:
            for b in bs:
                if b[0].split()[0] != "profile":
                    put(d, 'profile fz extends rfc9293 "a fuzzed overlay"\n' + "\n".join(b) + "\n")
        if os.path.basename(path) == "rfc9293.tcpspec":
            put(d, text.replace("profile rfc9293", "profile fz", 1))


def spec_compile_seeds():
    """The compiler's seeds: every small base profile of the spec seeds (milliseconds each) and the four
    smallest overlays (each compiles the whole shipped base: most of a second under ASan)."""
    src, d = os.path.join(SEEDS, "spec"), reset("spec-compile")
    names = sorted(os.listdir(src))
    texts = {n: open(os.path.join(src, n), "rb").read() for n in names}
    overlays = sorted((n for n in names if b" extends " in texts[n].split(b"\n")[0]), key=lambda n: (len(texts[n]), n))
    for n in names:
        if b" extends " not in texts[n].split(b"\n")[0] and len(texts[n]) < 4096:
            put(d, texts[n], n)
    for n in overlays[:4]:
        put(d, texts[n], n)


def case_seeds():
    d = reset("case")
    for path in sorted(glob.glob(os.path.join(ROOT, "Corpus", "**", "*.case"), recursive=True)):
        put(d, open(path, "rb").read())


def read_pcap(path):
    """Classic pcap (what Corpus holds): (linktype, [(sec, usec, bytes, orig_len)])."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(e + "I", data[20:24])[0]
    frames, i = [], 24
    while i + 16 <= len(data):
        sec, usec, caplen, orig = struct.unpack(e + "IIII", data[i:i + 16])
        frames.append((sec, usec, data[i + 16:i + 16 + caplen], orig))
        i += 16 + caplen
    return linktype, frames


def reframe(eth, link):
    """An Ethernet frame's payload in another link layer's framing; (dlt, bytes)."""
    ethertype, ip = struct.unpack(">H", eth[12:14])[0], eth[14:]
    if link == "ethernet":
        return 1, eth
    if link == "raw":
        return 101, ip
    if link == "sll":  # packet type 0 (to us), ARPHRD_ETHER, address length 6
        return 113, struct.pack(">HHH", 0, 1, 6) + eth[6:12] + b"\0\0" + struct.pack(">H", ethertype) + ip
    if link == "sll2":  # protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address
        return 276, struct.pack(">HHIHBB", ethertype, 0, 2, 1, 0, 6) + eth[6:12] + b"\0\0" + ip
    if link == "null":  # host-order AF_INET (2) or AF_INET6 (10 on Linux; 24/28/30 elsewhere)
        return 0, struct.pack("<I", 2 if ethertype == 0x0800 else 10) + ip
    raise ValueError(link)


def pcap_bytes(dlt, frames):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, dlt)
    for sec, usec, b, orig in frames:
        out += struct.pack("<IIII", sec, usec, len(b), orig) + b
    return out


def pcapng_bytes(dlt, frames):
    """Section header, one interface (microsecond timestamps by default), an enhanced packet block per frame."""
    def block(t, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", t, n) + body + struct.pack("<I", n)
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", dlt, 0, 65535))
    for sec, usec, b, orig in frames:
        ts = sec * 1000000 + usec
        out += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(b), orig) + b)
    return out


def capture_files():
    files = sorted(glob.glob(os.path.join(ROOT, "Corpus", "**", "*.pcap"), recursive=True))
    return [(p,) + read_pcap(p) for p in files]


def segment_seeds(captures):
    d = reset("segment")
    for path, dlt, frames in captures[:12]:
        if dlt != 1:
            continue
        for _, _, b, _ in frames[:4]:
            for link in ("ethernet", "raw", "sll", "sll2", "null"):
                put(d, reframe(b, link)[1])


def pcap_seeds(captures):
    d = reset("pcap")
    eth = [(p, f) for p, dlt, f in captures if dlt == 1]
    # The smallest few whole captures (a handful of frames each) keep every exec cheap.
    eth.sort(key=lambda x: (sum(len(b) for _, _, b, _ in x[1]), x[0]))
    for path, frames in eth[:6]:
        put(d, pcap_bytes(1, frames))
        put(d, pcapng_bytes(1, frames))
    for link in ("raw", "sll", "sll2", "null"):
        for path, frames in eth[:2]:
            framed = [(s, u, reframe(b, link)[1], o - (len(b) - len(reframe(b, link)[1]))) for s, u, b, o in frames]
            put(d, pcap_bytes(reframe(frames[0][2], link)[0], framed))


def dict_entry(w):
    """libFuzzer's dictionary syntax: printable ASCII, anything else (UTF-8 bytes of §, newlines) as \\xNN."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else "\\x%02x" % b for b in w.encode()) + '"'


def write_dict(name, words):
    os.makedirs(os.path.join(ROOT, "Fuzz", "dict"), exist_ok=True)
    with open(os.path.join(ROOT, "Fuzz", "dict", name + ".dict"), "w", encoding="utf-8") as f:
        f.write(f"# Generated by Fuzz/make-seeds.py from the shipped {name} files.\n")
        for w in words:
            f.write(dict_entry(w) + "\n")


def token_counts(paths, pattern, drop=lambda w: False):
    words = collections.Counter()
    for path in paths:
        for line in open(path, encoding="utf-8"):
            if line.lstrip().startswith("#"):
                continue
            for w in re.findall(pattern, line):
                if not drop(w):
                    words[w] += 1
    return [w for w, _ in sorted(words.items(), key=lambda x: (-x[1], x[0]))]


def dicts():
    specs = sorted(glob.glob(os.path.join(ROOT, "Spec", "*.tcpspec")))
    # Rule ids (a.b.c) and page numbers only repeat what seeds already hold.
    drop = lambda w: bool(re.fullmatch(r"[a-z0-9_\-]+(\.[a-z0-9_\-]+)+|p\.\d+", w))
    words = token_counts(specs, r"[A-Za-z][A-Za-z0-9_.\-]*|<-|=<|>=|!=|<[A-Z]+=|[<>=+\-(){},;:\[\]]|§", drop)
    write_dict("spec", words + ["\n  ", "\n    ", ' "', '" ', "#", "0x", "4294967295", "\r\n", "\t"])
    cases = sorted(glob.glob(os.path.join(ROOT, "Corpus", "**", "*.case"), recursive=True))
    words = token_counts(cases, r"[^\s<>\[\]]+|<|>|\[|\]")
    write_dict("case", words[:400] + ["option ", "ip", "target-port", "tester-port", "tester-isn", "timeout", "settle",
                                      "sysctl", "window", "net.ipv4.", "= -1 ", "ms", "\r\n", "\t", "#"])


def main():
    dicts()
    spec_seeds()
    spec_compile_seeds()
    case_seeds()
    caps = capture_files()
    segment_seeds(caps)
    pcap_seeds(caps)
    for t in sorted(os.listdir(SEEDS)):
        files = os.listdir(os.path.join(SEEDS, t))
        size = sum(os.path.getsize(os.path.join(SEEDS, t, f)) for f in files)
        print(f"seeds/{t}: {len(files)} files, {size} bytes")


if __name__ == "__main__":
    main()
