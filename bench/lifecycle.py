#!/usr/bin/env python3
"""Hot-reload and crash-recovery measurements for FlexiLib (release build).

    python3 bench/lifecycle.py            # all three measurements
    python3 bench/lifecycle.py --smoke    # a few iterations each

Prints:
  * time from a library file change (rename into place) to the first
    response from the new generation, median of 20;
  * RSS growth of the worker over 100 reloads of a C library and of the
    Rust example library (a Rust cdylib cannot be unloaded: see the docs);
  * time from a worker crash (SIGSEGV in a library) to the first response
    from its replacement, median of 5 (fresh supervisor each time, so the
    crash-loop back-off never applies).
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The WebAssembly runtime is not measured here, and its release build (fat
# LTO over Wasmtime) takes minutes: leave it out of the benchmarks' builds.
NOT_BENCHED = ["--exclude", "flexilib-wasm", "--exclude", "wasm-hello-builder"]
RELEASE = ROOT / "target" / "release"
VERSIONED_C = r'''
#include "flexilib.h"
#define STR2(x) #x
#define STR(x) STR2(x)
static struct flexilib_response reply = { .ptr = "v" STR(VERSION), .len = sizeof("v" STR(VERSION)) - 1 };
struct flexilib_response *handle_request(struct flexilib_request *req) { (void)req; return &reply; }
'''


def cc(source, out, *flags):
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-I", str(ROOT / "include"), *flags, "-o", str(out),
                    str(source)], check=True)


class Server:
    def __init__(self, workdir, config):
        self.err_path = workdir / "stderr.log"
        env = dict(os.environ, PORT="0", LISTEN_ADDRESS="127.0.0.1", RUST_LOG="info", FLEXILIB_CONFIG=str(config))
        self.proc = subprocess.Popen([str(RELEASE / "flexilib")], env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.err_path, "w"))
        deadline = time.monotonic() + 20
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            m = re.search(r"listening.*address=127\.0\.0\.1:(\d+)", self.err_path.read_text())
            if m:
                self.port = int(m.group(1))
            time.sleep(0.01)
        if self.port is None:
            sys.exit("server did not start")

    def log(self):
        return self.err_path.read_text()

    def worker_pid(self):
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None

    def worker_rss_kb(self):
        pid = self.worker_pid()
        with open(f"/proc/{pid}/status") as f:
            return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def get(port, path="/", headers=""):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode(errors="replace")
    except (OSError, IndexError, ValueError):
        return None, ""


def reload_latency(workdir, samples):
    lib = workdir / "libversioned.so"
    src = workdir / "versioned.c"
    src.write_text(VERSIONED_C)
    cc(src, lib, "-DVERSION=1")
    (workdir / "proxy.ini").write_text("/ = libversioned.so\n")
    server = Server(workdir, workdir / "proxy.ini")
    try:
        assert get(server.port)[1] == "v1"
        times = []
        for version in range(2, samples + 2):
            staged = workdir / f"staged-{version}.so"
            cc(src, staged, f"-DVERSION={version}")
            time.sleep(0.05)
            started = time.perf_counter()
            os.rename(staged, lib)
            while get(server.port)[1] != f"v{version}":
                pass
            times.append((time.perf_counter() - started) * 1e3)
        return times
    finally:
        server.stop()


def reload_rss(workdir, library, reloads):
    lib = workdir / "lib.so"
    shutil.copy(library, lib)
    (workdir / "proxy.ini").write_text("/ = lib.so\n")
    server = Server(workdir, workdir / "proxy.ini")
    try:
        get(server.port)
        time.sleep(0.2)
        before = server.worker_rss_kb()
        for n in range(2, reloads + 2):
            staged = workdir / "staged.so"
            shutil.copy(library, staged)
            os.rename(staged, lib)
            deadline = time.monotonic() + 5
            while f"generation={n} " not in server.log() and time.monotonic() < deadline:
                time.sleep(0.002)
            get(server.port)
        time.sleep(0.5)
        return before, server.worker_rss_kb()
    finally:
        server.stop()


def restart_time(workdir, samples):
    crash = workdir / "libcrash.so"
    cc(ROOT / "examples" / "c-crash" / "crash.c", crash)
    (workdir / "proxy.ini").write_text("/ = libcrash.so\n")
    times = []
    for _ in range(samples):
        server = Server(workdir, workdir / "proxy.ini")
        try:
            assert get(server.port)[1] == "alive"
            started = time.perf_counter()
            get(server.port, headers="x-crash: segv\r\n")
            while get(server.port)[1] != "alive":
                pass
            times.append((time.perf_counter() - started) * 1e3)
        finally:
            server.stop()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet", *NOT_BENCHED], cwd=ROOT, check=True)
    samples, reloads, crashes = (3, 5, 1) if args.smoke else (20, 100, 5)
    with tempfile.TemporaryDirectory(prefix="flexilib-lifecycle-") as tmp:
        tmp = Path(tmp)
        for sub in ("latency", "c", "rust", "crash"):
            (tmp / sub).mkdir()
        times = reload_latency(tmp / "latency", samples)
        print(f"reload: file change -> first response from the new generation: median {statistics.median(times):.2f} ms "
              f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} reloads)")
        c_lib = tmp / "c" / "libsample_c.so"
        cc(ROOT / "examples" / "c-sample" / "sample.c", c_lib)
        for label, library, sub in (("C sample", c_lib, "c"),
                                    ("Rust example", RELEASE / "libflexilib_example_rust.so", "rust")):
            before, after = reload_rss(tmp / sub, library, reloads)
            print(f"reload: worker RSS over {reloads} reloads of the {label} library: {before / 1024:.1f} MB -> "
                  f"{after / 1024:.1f} MB ({(after - before) / reloads:.0f} KiB per reload)")
        times = restart_time(tmp / "crash", crashes)
        print(f"crash: SIGSEGV in a library -> first response from the new worker: median "
              f"{statistics.median(times):.1f} ms (min {min(times):.1f}, max {max(times):.1f}, {len(times)} crashes)")


if __name__ == "__main__":
    main()
