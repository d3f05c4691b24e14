#!/usr/bin/env python3
"""Builds the libFuzzer harnesses in Fuzz/Harnesses with swiftc -sanitize=fuzzer,address.

Nothing here names a source file of the package: the module graph comes from `swift package dump-package`,
each module's sources are every .swift (or .c) under Sources/NAME, and a harness's modules are the package
targets it imports. So a file added to or removed from a module, a new dependency, or a C target replacing a
system-library one (every .c under its directory is compiled) needs no change here.

Each Swift module is compiled whole-module, optimized, instrumented for coverage and ASan, into one object
and a .swiftmodule (sources `import Spec` etc., so every module must be its own module); a harness is linked
from its file and the objects of its closure, which links libFuzzer's main. A module is rebuilt only when its
inputs (file list, sizes, mtimes, flags, the modules it imports) changed, so a second `build` is quick.

Usage: build.py [--build-dir DIR] [--jobs N] [HARNESS ...]
"""
import argparse
import concurrent.futures as futures
import hashlib
import json
import os
import re
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS_DIR = os.path.join(ROOT, "Fuzz", "Harnesses")
# Files every harness is linked with (invariant checks shared by all).
SUPPORT_DIR = os.path.join(HARNESS_DIR, "Support")
SWIFTC = os.environ.get("SWIFTC", "swiftc")
# The toolchain's own clang: its libFuzzer/ASan runtimes match swiftc's.
CLANG = os.environ.get("CLANG") or os.path.join(os.path.dirname(os.path.realpath(subprocess.run(
    ["bash", "-c", f"command -v {SWIFTC}"], capture_output=True, text=True).stdout.strip() or "/usr/bin/swiftc")), "clang")

SAN = ["-sanitize=fuzzer,address"]
SWIFT_FLAGS = ["-O", "-gline-tables-only", "-swift-version", "6", "-package-name", "tcpspec",
               "-DSWIFT_PACKAGE", "-parse-as-library"]
C_FLAGS = ["-O1", "-g", "-fsanitize=fuzzer-no-link,address", "-fPIC"]


def log(msg):
    print(f"fuzz build: {msg}", flush=True)


def load_package():
    out = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"fuzz build: swift package dump-package failed:\n{out.stderr}")
    pkg = json.loads(out.stdout)
    targets = {}
    for t in pkg["targets"]:
        deps = []
        for d in t.get("dependencies", []):
            # byName / target name a target of this package; products of other packages are not needed here.
            for key in ("byName", "target"):
                if key in d:
                    deps.append(d[key][0])
        libs = []
        for s in t.get("settings", []):
            if s.get("tool") == "linker" and "linkedLibrary" in s.get("kind", {}):
                libs.append(s["kind"]["linkedLibrary"]["_0"])
        path = t.get("path") or os.path.join("Sources" if t["type"] != "test" else "Tests", t["name"])
        targets[t["name"]] = {"name": t["name"], "type": t["type"], "deps": deps, "libs": libs,
                              "dir": os.path.join(ROOT, path), "pkgConfig": t.get("pkgConfig")}
    return targets


def files_under(d, ext):
    found = []
    for base, dirs, files in os.walk(d):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(ext):
                found.append(os.path.join(base, f))
    return found


def kind(t):
    """swift, c (a C target: has .c files or an include dir) or system (a module map, no sources)."""
    if t["type"] == "system":
        return "system"
    if files_under(t["dir"], ".swift"):
        return "swift"
    return "c"


def imports_of(path, known):
    names = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*(?:@testable\s+)?import\s+(\w+)", line)
            if m and m.group(1) in known:
                names.add(m.group(1))
    return names


def closure(names, targets):
    seen, order = set(), []

    def visit(n):  # depth-first: dependencies before dependents
        if n in seen:
            return
        seen.add(n)
        for d in targets[n]["deps"]:
            if d in targets:
                visit(d)
        order.append(n)

    for n in sorted(names):
        visit(n)
    return order


def stamp(paths, extra):
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    h.update("\0".join(extra).encode())
    return h.hexdigest()


class Builder:
    def __init__(self, build_dir, targets):
        self.b = build_dir
        self.targets = targets
        self.mods = os.path.join(build_dir, "modules")
        self.obj = os.path.join(build_dir, "obj")
        self.bin = os.path.join(build_dir, "bin")
        for d in (self.mods, self.obj, self.bin):
            os.makedirs(d, exist_ok=True)
        self.stamps = {}  # module -> stamp of its outputs' inputs, so dependents rebuild when it does
        self.lock = threading.Lock()

    def clang_import_flags(self, names):
        """How swiftc finds the C modules among `names`."""
        flags = []
        for n in names:
            t = self.targets[n]
            k = kind(t)
            if k == "system":
                flags += ["-I", t["dir"]]
                if t.get("pkgConfig"):
                    cf = subprocess.run(["pkg-config", "--cflags", t["pkgConfig"]], capture_output=True, text=True)
                    for f in cf.stdout.split():
                        flags += ["-Xcc", f]
            elif k == "c":
                inc = os.path.join(t["dir"], "include")
                mm = os.path.join(inc, "module.modulemap")
                if not os.path.exists(mm):
                    # What SwiftPM generates for a C target without its own module map: the include dir as umbrella.
                    mm = os.path.join(self.mods, f"{n}.modulemap")
                    text = f'module {n} {{\n    umbrella "{inc}"\n    export *\n}}\n'
                    if not os.path.exists(mm) or open(mm).read() != text:
                        with open(mm, "w") as f:
                            f.write(text)
                flags += ["-Xcc", f"-fmodule-map-file={mm}", "-I", inc]
        return flags

    def run(self, cmd, what):
        p = subprocess.run(cmd, capture_output=True, text=True)
        # ld.gold warns about ASan's local symbols on every link; nothing to act on.
        noise = re.compile(r"ld\.gold: warning: Cannot export local symbol")
        err = "\n".join(l for l in (p.stdout + p.stderr).splitlines() if not noise.search(l))
        if p.returncode != 0:
            sys.exit(f"fuzz build: {what} failed:\n{' '.join(cmd)}\n{err}")
        if err.strip() and os.environ.get("FUZZ_BUILD_VERBOSE"):
            print(err)

    def build_module(self, n):
        t = self.targets[n]
        k = kind(t)
        deps = [d for d in closure([n], self.targets) if d != n]
        dep_stamps = [self.stamps[d] for d in deps]
        if k == "system":
            self.stamps[n] = stamp(files_under(t["dir"], ""), [])
            return []
        if k == "c":
            srcs = files_under(t["dir"], ".c")
            headers = files_under(t["dir"], ".h")
            objs = []
            s = stamp(srcs + headers, C_FLAGS + dep_stamps)
            self.stamps[n] = s
            for src in srcs:
                rel = os.path.relpath(src, t["dir"]).replace("/", "_")
                o = os.path.join(self.obj, f"{n}__{rel}.o")
                objs.append(o)
                if self.fresh(o, s):
                    continue
                self.run([CLANG, *C_FLAGS, "-I", os.path.join(t["dir"], "include"), "-c", src, "-o", o], f"clang {src}")
                self.mark(o, s)
            log(f"{n} (C, {len(srcs)} file{'s' if len(srcs) != 1 else ''})")
            return objs
        srcs = files_under(t["dir"], ".swift")
        o = os.path.join(self.obj, f"{n}.o")
        flags = SWIFT_FLAGS + SAN + self.clang_import_flags(deps)
        s = stamp(srcs, flags + dep_stamps)
        self.stamps[n] = s
        if not self.fresh(o, s):
            self.run([SWIFTC, *flags, "-module-name", n, "-wmo", "-emit-module",
                      "-emit-module-path", os.path.join(self.mods, f"{n}.swiftmodule"), "-I", self.mods,
                      "-c", *srcs, "-o", o], f"swiftc module {n}")
            self.mark(o, s)
            log(f"{n} ({len(srcs)} Swift files)")
        return [o]

    def fresh(self, out, s):
        st = out + ".stamp"
        return os.path.exists(out) and os.path.exists(st) and open(st).read() == s

    def mark(self, out, s):
        with open(out + ".stamp", "w") as f:
            f.write(s)

    def build_modules(self, order, jobs):
        """Compiles `order` (dependencies first), up to `jobs` at a time as soon as their dependencies are done."""
        objs, done, pending = {}, set(), list(order)
        running = {}
        with futures.ThreadPoolExecutor(max_workers=jobs) as ex:
            while pending or running:
                for n in list(pending):
                    if len(running) >= jobs:
                        break
                    if all(d in done for d in self.targets[n]["deps"] if d in self.targets):
                        pending.remove(n)
                        running[ex.submit(self.build_module, n)] = n
                finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for f in finished:
                    n = running.pop(f)
                    objs[n] = f.result()
                    done.add(n)
        return objs

    def link(self, harness, path, order, objs):
        mods = closure(order, self.targets)
        libs = []
        for n in mods:
            libs += [f"-l{l}" for l in self.targets[n]["libs"]]
            if kind(self.targets[n]) == "system" and self.targets[n].get("pkgConfig"):
                lf = subprocess.run(["pkg-config", "--libs", self.targets[n]["pkgConfig"]], capture_output=True, text=True)
                libs += lf.stdout.split()
        out = os.path.join(self.bin, f"fuzz-{harness}")
        flags = SWIFT_FLAGS + SAN + self.clang_import_flags(mods)
        all_objs = [o for n in mods for o in objs[n]]
        support = sorted(os.path.join(SUPPORT_DIR, f) for f in os.listdir(SUPPORT_DIR) if f.endswith(".swift")) if os.path.isdir(SUPPORT_DIR) else []
        s = stamp([path] + support + all_objs, flags + libs)
        if self.fresh(out, s):
            return out
        # -ldl: a C target may dlopen a library (libpcap) instead of linking it.
        self.run([SWIFTC, *flags, "-module-name", "Fuzz_" + harness.replace("-", "_"), "-I", self.mods, path, *support, *all_objs, *libs,
                  "-ldl", "-o", out], f"link fuzz-{harness}")
        self.mark(out, s)
        log(f"fuzz-{harness} linked")
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(ROOT, ".build-fuzz"))
    ap.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    ap.add_argument("harness", nargs="*")
    a = ap.parse_args()
    targets = load_package()
    known = {n for n, t in targets.items() if t["type"] in ("regular", "system")}
    harnesses = {os.path.splitext(f)[0]: os.path.join(HARNESS_DIR, f)
                 for f in sorted(os.listdir(HARNESS_DIR)) if f.endswith(".swift")}
    chosen = a.harness or sorted(harnesses)
    for h in chosen:
        if h not in harnesses:
            sys.exit(f"fuzz build: no harness '{h}' (have: {', '.join(sorted(harnesses))})")
    uses = {h: imports_of(harnesses[h], known) for h in chosen}
    order = closure(set().union(*uses.values()), targets)
    b = Builder(a.build_dir, targets)
    objs = b.build_modules(order, a.jobs)
    for h in chosen:
        print(b.link(h, harnesses[h], uses[h], objs))


if __name__ == "__main__":
    main()
