#!/usr/bin/env python3
"""WebAssembly components on FlexiLib against `wasmtime serve`, and against a
native library route, side by side.

The lean C guest of examples/wasm-hello (a wasi:http/proxy component) is
served by FlexiLib (`/w = wasm:hello.wasm`), by `wasmtime serve` (the same
component, pooling allocator on: `-O pooling-allocator=y -S cli`), and, for
scale, FlexiLib's native Rust example library; so is the JavaScript guest
of examples/wasm-js (componentize-js: SpiderMonkey inside the component,
about 13 MB; `/js = wasm:js.wasm`; built with npm's componentize-js, left
out with --no-js or when it cannot be built). Runs alternate (A B C A B C
…, --rounds times), the server pinned to one core and wrk to another, as in
bench.py. Reported: median requests/s, p50/p99 latency, RSS of each server's
process tree idle and after the load; how long FlexiLib took to make each
component ready (compiled on the first start, from the compile cache
after); then FlexiLib's reload time (a second build of the C component
renamed over the first → first response from it, compile cache warm).

    python3 bench/wasm.py                     # 3 rounds of 10 s
    python3 bench/wasm.py --smoke             # a few seconds: checks that it runs
    python3 bench/wasm.py --wasmtime /path/to/wasmtime

`wasmtime` is not installed by this script: `cargo install --locked
wasmtime-cli@48.0.8` builds it (about 15 minutes on 2 cores); without it
(and without --wasmtime, or `wasmtime` on PATH) only FlexiLib is measured.
This script builds FlexiLib's release binaries with the WebAssembly runtime
(which the other benchmarks leave out: its fat-LTO build takes minutes).
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as b  # noqa: E402  (the shared helpers)

ROOT = b.ROOT
RELEASE = b.RELEASE


def build_guest(out, *defines):
    subprocess.run([str(ROOT / "examples" / "wasm-hello" / "build.sh"), str(out), *defines],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def build_js_guest(out):
    """The JavaScript guest (examples/wasm-js/build.sh keeps its build in
    target/wasm-js while the sources are unchanged), copied to `out`; False
    if it cannot be built here."""
    built = ROOT / "target" / "wasm-js" / "hello.wasm"
    result = subprocess.run([str(ROOT / "examples" / "wasm-js" / "build.sh"), str(built)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        print(f"# the JavaScript guest could not be built (examples/wasm-js/build.sh): "
              f"{result.stderr.strip().splitlines()[-1:] or ''}; measuring the C guest only")
        return False
    shutil.copy(built, out)
    return True


# Lines of FlexiLib's log saying a component is ready, with how it was made.
READY_RE = re.compile(r"\[(\S+)\] component ready: .* \((compiled|from the compile cache) in ([\d.]+) ms\)")


def flexilib(workdir, port, cpu, config="proxy.ini", routes=()):
    """FlexiLib with `config` on `port`, once each of its `wasm:` `routes`
    has said its component is ready; each route's (how, ms) is in `.ready`."""
    log = workdir / "flexilib.stderr"
    offset = log.stat().st_size if log.exists() else 0
    env = dict(os.environ, PORT=str(port), LISTEN_ADDRESS="127.0.0.1", RUST_LOG="warn",
               FLEXILIB_CONFIG=str(workdir / config), XDG_CACHE_HOME=str(workdir / "cache"))
    # A worker listens once its routes' components are compiled: the JS
    # guest's first, cold compile takes tens of seconds on one core.
    server = b.Server("flexilib", [str(RELEASE / "flexilib")], env, port, cpu, workdir, startup_s=600)
    server.ready = {}
    deadline = time.monotonic() + 600
    while set(routes) - set(server.ready):
        with open(log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        server.ready = {m.group(1): (m.group(2), float(m.group(3))) for m in READY_RE.finditer(text)}
        if time.monotonic() > deadline:
            server.stop()
            b.fail(f"FlexiLib never made {sorted(set(routes) - set(server.ready))} ready; see {log}")
        time.sleep(0.05)
    return server


def wasmtime_serve(binary, workdir, port, cpu, component="hello.wasm", name="wasmtime"):
    argv = [str(binary), "serve", "--addr", f"127.0.0.1:{port}", "-O", "pooling-allocator=y", "-S", "cli",
            str(workdir / component)]
    return b.Server(name, argv, dict(os.environ), port, cpu, workdir)


def measure(server, path, args):
    b.http_get(server.port, path)
    time.sleep(0.5)
    idle = server.rss_kb()
    result = b.wrk(server.port, path, args.client_cpu, args.duration, args.connections)
    time.sleep(0.5)
    result["idle_kb"] = idle
    result["after_kb"] = server.rss_kb()
    return result


def http_body(port, path):
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        decoded = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded += rest[:size]
            body = rest[size + 2:]
        body = decoded
    return body.decode(errors="replace")


def reload_times(workdir, args, count):
    """Renames the other build over the served component and times the first
    response from it (both builds compiled once before: the cache is warm)."""
    port = b.free_port()
    server = flexilib(workdir, port, args.server_cpu)
    builds = {"hello from a C component": workdir / "v1.wasm", "hello from version 2": workdir / "v2.wasm"}
    times = []
    try:
        # Warm the cache with both builds.
        for greeting, build in list(builds.items()) * 2:
            times.append(swap(workdir, port, build, greeting))
        times = []
        for i in range(count):
            greeting, build = list(builds.items())[i % 2]
            times.append(swap(workdir, port, build, greeting))
            time.sleep(0.2)
    finally:
        server.stop()
        shutil.copy(builds["hello from a C component"], workdir / "hello.wasm")
    return times


def swap(workdir, port, build, greeting):
    staged = workdir / ".hello.wasm.new"
    shutil.copy(build, staged)
    started = time.monotonic()
    os.replace(staged, workdir / "hello.wasm")
    while True:
        text = http_body(port, "/w/x")
        if text.startswith(greeting):
            return (time.monotonic() - started) * 1000
        if time.monotonic() - started > 10:
            b.fail(f"the reload never served (still {text!r})")


def find_wasmtime(explicit):
    if explicit:
        return Path(explicit)
    found = shutil.which("wasmtime")
    return Path(found) if found else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--wasmtime", help="path of the wasmtime binary (48.x)")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--no-js", action="store_true", help="leave out the JavaScript guest")
    parser.add_argument("--smoke", action="store_true", help="one short round")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration = 1, 2
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            b.fail(f"{tool} is missing (apt-get install -y wrk util-linux)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "flexilib", "-p", "flexilib-wasm",
                        "-p", "flexilib-example-rust"], cwd=ROOT, check=True)
    binary = find_wasmtime(args.wasmtime)
    b.raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="flexilib-wasm-bench-"))
    build_guest(workdir / "v1.wasm")
    build_guest(workdir / "v2.wasm", '-DGREETING="hello from version 2"')
    shutil.copy(workdir / "v1.wasm", workdir / "hello.wasm")
    js = not args.no_js and build_js_guest(workdir / "js.wasm")
    (workdir / "proxy.ini").write_text(
        f"/w = wasm:hello.wasm\n/ = {RELEASE / 'libflexilib_example_rust.so'}\n")
    # The JavaScript guest on a server of its own, so that the C guest's and
    # the native route's RSS do not include it.
    (workdir / "js.ini").write_text("/js = wasm:js.wasm\n")
    print(f"# wasi:http hello world (C): server on CPU {args.server_cpu}, wrk -t1 -c{args.connections} on CPU "
          f"{args.client_cpu}, {args.duration} s runs, {args.rounds} rounds alternating; scratch dir {workdir}")
    loads = []  # FlexiLib's (route, how, ms) at each start
    def fl(port, config="proxy.ini", routes=("/w",)):  # noqa: E306
        server = flexilib(workdir, port, args.server_cpu, config, routes)
        loads.extend((route, how, ms) for route, (how, ms) in server.ready.items())
        return server
    kinds = {
        "FlexiLib wasm: route": lambda port: (fl(port), "/w/x"),
        "wasmtime serve (same component)": lambda port: (wasmtime_serve(binary, workdir, port, args.server_cpu),
                                                         "/w/x"),
        "FlexiLib wasm: route, JS guest": lambda port: (fl(port, "js.ini", ("/js",)), "/js/hello"),
        "wasmtime serve (same JS component)": lambda port: (
            wasmtime_serve(binary, workdir, port, args.server_cpu, "js.wasm", "wasmtime-js"), "/js/hello"),
        "FlexiLib native library route": lambda port: (fl(port), "/"),
    }
    if binary is None:
        print("# wasmtime not found (cargo install --locked wasmtime-cli@48.0.8, or --wasmtime PATH): "
              "measuring FlexiLib only")
        del kinds["wasmtime serve (same component)"]
        del kinds["wasmtime serve (same JS component)"]
    if not js:
        del kinds["FlexiLib wasm: route, JS guest"]
        kinds.pop("wasmtime serve (same JS component)", None)
    # Compile each component once (into the compile cache in the scratch
    # dir) before measuring: a process that compiled a large component keeps
    # the compiler's memory (300 MB for the JS guest), which is not what a
    # restarted or reloaded server holds.
    for config, routes in [("proxy.ini", ("/w",))] + ([("js.ini", ("/js",))] if js else []):
        fl(b.free_port(), config, routes).stop()
    results = {name: [] for name in kinds}
    for _ in range(args.rounds):
        for name, start in kinds.items():
            server, path = start(b.free_port())
            try:
                results[name].append(measure(server, path, args))
            finally:
                server.stop()
    print()
    print("| server | req/s | p50 ms | p99 ms | RSS idle MB | RSS after load MB | errors |")
    print("|---|---|---|---|---|---|---|")
    med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    for name, runs in results.items():
        errors = "; ".join(sorted({r["errors"] for r in runs if r["errors"]})) or "none"
        print(f"| {name} | {med(runs, 'rps'):,.0f} | {med(runs, 'p50'):.2f} | {med(runs, 'p99'):.2f} | "
              f"{med(runs, 'idle_kb') / 1024:.1f} | {med(runs, 'after_kb') / 1024:.1f} | {errors} |")
    if "wasmtime serve (same component)" in results:
        ours = med(results["FlexiLib wasm: route"], "rps")
        theirs = med(results["wasmtime serve (same component)"], "rps")
        print(f"\nFlexiLib wasm: / wasmtime serve requests/s: {ours / theirs:.2f}x")
    if "wasmtime serve (same JS component)" in results:
        ours = med(results["FlexiLib wasm: route, JS guest"], "rps")
        theirs = med(results["wasmtime serve (same JS component)"], "rps")
        print(f"FlexiLib wasm: / wasmtime serve requests/s, JS guest: {ours / theirs:.2f}x")
    print()
    for route in ("/w", "/js") if js else ("/w",):
        size = (workdir / ("hello.wasm" if route == "/w" else "js.wasm")).stat().st_size / 1024 / 1024
        cold = [ms for r, how, ms in loads if r == route and how == "compiled"]
        warm = [ms for r, how, ms in loads if r == route and how != "compiled"]
        print(f"FlexiLib {route} ({size:.1f} MB component) ready: "
              + (f"compiled in {cold[0]:.0f} ms on the first start" if cold else "never compiled (cache)")
              + (f", from the compile cache in {statistics.median(warm):.1f} ms (median of {len(warm)} starts)"
                 if warm else ""))
    times = reload_times(workdir, args, 4 if args.smoke else 20)
    print(f"reload (component renamed over, cache warm -> first response from it): median "
          f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms over {len(times)} swaps")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
