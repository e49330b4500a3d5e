#!/usr/bin/env python3
"""FlexiLib benchmark suite: FlexiLib against nginx, side by side.

Each scenario runs both servers in alternation (A B A B ..., --rounds times),
the server pinned to one core and the load generator (wrk) to another, and
prints median requests/s, p50 and p99 latency, the ratio to nginx, and the
memory of each server's whole process tree: peak RSS (VmHWM summed over the
processes) and PSS at the end of the run (shared pages divided among the
processes sharing them, so the binary and libc count once).

    python3 bench/bench.py                 # full suite (about 6 minutes)
    python3 bench/bench.py --smoke         # a few seconds: checks that it runs
    python3 bench/bench.py --only keepalive,close --rounds 5 --duration 10
    python3 bench/bench.py --hog           # the same with a CPU hog on the server's core
    python3 bench/bench.py --before DIR    # and another FlexiLib build (DIR/flexilib) alongside

`--before DIR` runs a second FlexiLib build (for example an older commit's
`target/release`) as a third server in the same rounds, to measure a change
before and after under the same conditions. `--hog` runs a busy loop pinned to the server's CPU during every run, for
both servers alike: a busy neighbour, as a shared machine has one. The
`https` and `h2` scenarios use one self-signed certificate for both
servers (HTTP/1.1 over TLS with wrk, HTTP/2 over TLS with h2load from
Debian's nghttp2-client, whose per-request log gives the percentiles).

It builds FlexiLib in release mode first. It installs nothing: missing tools
are named, with the Debian packages that provide them.
"""

import argparse
import os
import re
import resource
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
TOOLS = {"wrk": "wrk", "nginx": "nginx-light", "taskset": "util-linux", "cc": "gcc", "openssl": "openssl",
         "h2load": "nghttp2-client"}


def fail(message):
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(1)


def check_tools():
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in TOOLS.items() if not shutil.which(tool)]
    if missing:
        fail("missing tools: " + ", ".join(missing) + "\n  install with: apt-get install -y wrk nginx-light openssl nghttp2-client")


def build():
    subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet", *NOT_BENCHED], cwd=ROOT, check=True)
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-I", "include", "-o", str(RELEASE / "libsample_c.so"),
         "examples/c-sample/sample.c"],
        cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------- processes

def tree_pids(pid):
    """pid and all its descendants."""
    pids, frontier = [pid], [pid]
    while frontier:
        p = frontier.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                pids += kids
                frontier += kids
        except OSError:
            pass
    return pids


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(pid):
    return sum(status_kb(p, "VmRSS") for p in tree_pids(pid))


def pss_kb(pid):
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kb(pid):
    return sum(pss_kb(p) for p in tree_pids(pid))


def tree_peak_kb(pid):
    return sum(status_kb(p, "VmHWM") for p in tree_pids(pid))


def http_get(port, path="/", headers=None, timeout=2.0):
    """One GET on a fresh connection; returns the status code or None."""
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = s.recv(64)
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return int(m.group(1)) if m else None
    except OSError:
        return None


class Server:
    """A server under test, started pinned to a core."""

    def __init__(self, name, argv, env, port, cpu, workdir, startup_s=20):
        self.name, self.port = name, port
        log = open(workdir / f"{name}.stdout", "ab")
        err = open(workdir / f"{name}.stderr", "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["taskset", "-c", str(cpu)] + argv, env=env, stdout=log, stderr=err,
                                     cwd=workdir)
        self.first_response_s = None
        deadline = self.started + startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail(f"{name} exited at startup; see {workdir}/{name}.stderr")
            if http_get(self.port, timeout=0.5) is not None:
                self.first_response_s = time.monotonic() - self.started
                return
            time.sleep(0.001)
        self.stop()
        fail(f"{name} did not answer within {startup_s} s")

    def rss_kb(self):
        return tree_rss_kb(self.proc.pid)

    def pss_kb(self):
        return tree_pss_kb(self.proc.pid)

    def peak_kb(self):
        return tree_peak_kb(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Setup:
    """Config files for both servers in a scratch directory."""

    def __init__(self, workdir, server_cpu):
        self.dir, self.cpu = workdir, server_cpu
        (workdir / "proxy.ini").write_text(f"/ = {RELEASE / 'libflexilib_example_rust.so'}\n")
        (workdir / "www").mkdir(exist_ok=True)
        (workdir / "www" / "1k").write_bytes(b"x" * 1024)
        (workdir / "www" / "64k").write_bytes(b"x" * 65536)
        (workdir / "logs").mkdir(exist_ok=True)
        self.cert, self.key = workdir / "cert.pem", workdir / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(self.key),
                        "-out", str(self.cert)], check=True, stderr=subprocess.DEVNULL)

    def flexilib(self, port, upstream=None, static=False, tls_port=None, release=RELEASE, label="flexilib"):
        config = self.dir / "proxy.ini"
        if release != RELEASE:
            # Another build (--before): its own example library too.
            config = self.dir / f"proxy-{label}.ini"
            config.write_text(f"/ = {release / 'libflexilib_example_rust.so'}\n")
        if static:
            # The same files nginx serves from its root, through a `dir:` route.
            config = self.dir / "proxy-static.ini"
            config.write_text(f"/files/ = dir:{self.dir / 'www'}\n"
                              f"/ = {release / 'libflexilib_example_rust.so'}\n")
        if upstream:
            config = self.dir / "proxy-upstream.ini"
            config.write_text(f"/ = http://127.0.0.1:{upstream}\n")
        env = dict(os.environ, PORT=str(port), LISTEN_ADDRESS="127.0.0.1", RUST_LOG="warn",
                   FLEXILIB_CONFIG=str(config))
        if tls_port:
            env.update(TLS_PORT=str(tls_port), TLS_CERT=str(self.cert), TLS_KEY=str(self.key))
        server = Server(label, [str(release / "flexilib")], env, port, self.cpu, self.dir)
        server.tls_port = tls_port
        return server

    def nginx(self, port, upstream=None, name="nginx", cpu=None, tls_port=None):
        conf = self.dir / f"{name}.conf"
        root_location = 'return 200 " 3";'
        upstream_block = ""
        if upstream:
            upstream_block = f"upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; }}"
            root_location = ('proxy_pass http://backend; proxy_http_version 1.1; '
                             'proxy_set_header Connection ""; proxy_set_header Host $host; '
                             'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;')
        user = "user root;" if os.geteuid() == 0 else ""
        tls_block = ""
        if tls_port:
            tls_block = (f"server {{ listen 127.0.0.1:{tls_port} ssl http2; "
                         f"ssl_certificate {self.cert}; ssl_certificate_key {self.key}; "
                         f"ssl_protocols TLSv1.2 TLSv1.3; location / {{ {root_location} }} }}")
        conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
master_process on;
pid {self.dir}/{name}.pid;
error_log {self.dir}/logs/error.log warn;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log {self.dir}/logs/{name}-access.log combined buffer=64k flush=1s;
    {upstream_block}
    keepalive_requests 1000000;
    open_file_cache max=16;
    server {{
        listen 127.0.0.1:{port};
        location = /1k {{ root {self.dir}/www; }}
        location = /64k {{ root {self.dir}/www; }}
        location / {{ {root_location} }}
    }}
    {tls_block}
}}
""")
        server = Server(name, ["nginx", "-c", str(conf), "-p", str(self.dir)], dict(os.environ), port,
                        self.cpu if cpu is None else cpu, self.dir)
        server.tls_port = tls_port
        return server


# ---------------------------------------------------------------- load

LATENCY_RE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def to_ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(port, path, cpu, duration, connections, headers=(), script=None, scheme="http"):
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for h in headers:
        argv += ["-H", h]
    if script:
        argv += ["-s", str(script)]
    argv.append(f"{scheme}://127.0.0.1:{port}{path}")
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: to_ms(v, u) for p, v, u in LATENCY_RE.findall(out)}
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"),
            "errors": (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else "")}


class IdleConnections:
    """Keep-alive connections that made one request and then sit idle."""

    def __init__(self, port, count):
        self.socks = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.socks.append(s)
        for s in self.socks:
            s.settimeout(5)
            s.recv(4096)

    def close(self):
        for s in self.socks:
            s.close()


# ---------------------------------------------------------------- scenarios

def scenario_load(path_fl, path_ngx, headers=(), script=None, connections=32, idle=0):
    def run(setup, server, args):
        port = server.port
        held = IdleConnections(port, idle) if idle else None
        # FlexiLib builds (this one and --before's) get the example
        # library's x- headers; nginx serves files by path.
        is_nginx = server.name == "nginx"
        path = path_ngx if is_nginx else path_fl
        fl_headers = tuple(h for h in headers if not h.startswith("x-")) if is_nginx else headers
        result = wrk(port, path, args.client_cpu, args.duration, connections, fl_headers, script)
        result["rss_kb"] = server.peak_kb()
        result["pss_kb"] = server.pss_kb()
        if held:
            held.close()
        return result
    return run


def h2load(port, path, cpu, duration, connections, workdir):
    """HTTP/2 over TLS with h2load: requests/s, and p50/p99 from its
    per-request log (start, status, microseconds per line)."""
    log = workdir / "h2load.log"
    argv = ["taskset", "-c", str(cpu), "h2load", "-t1", f"-c{connections}", "-m1", f"-D{duration}",
            f"--log-file={log}", f"https://127.0.0.1:{port}{path}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    times = sorted(int(line.split()[2]) / 1e3 for line in log.read_text().splitlines() if line.strip())
    failed = re.search(r"(\d+) failed", out)
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))] if times else None
    return {"rps": rps, "p50": pick(0.50), "p99": pick(0.99),
            "errors": f"{failed.group(1)} failed" if failed and failed.group(1) != "0" else ""}


def scenario_tls(protocol, connections=32):
    def run(setup, server, args):
        if protocol == "h2":
            result = h2load(server.tls_port, "/", args.client_cpu, args.duration, connections, setup.dir)
        else:
            result = wrk(server.tls_port, "/", args.client_cpu, args.duration, connections, scheme="https")
        result["rss_kb"] = server.peak_kb()
        result["pss_kb"] = server.pss_kb()
        return result
    return run


def scenario_idle_rss(setup, server, args):
    time.sleep(0.2)
    idle, idle_pss = server.rss_kb(), server.pss_kb()
    for _ in range(args.requests_for_rss):
        http_get(server.port)
    time.sleep(0.2)
    return {"idle_kb": idle, "after_kb": server.rss_kb(), "idle_pss_kb": idle_pss, "after_pss_kb": server.pss_kb()}


def scenario_startup(setup, server, args):
    return {"startup_ms": server.first_response_s * 1e3}


def post_script(workdir):
    script = workdir / "post4k.lua"
    script.write_text('wrk.method = "POST"\nwrk.body = string.rep("p", 4096)\n'
                      'wrk.headers["Content-Type"] = "application/octet-stream"\n')
    return script


def scenarios(workdir):
    return [
        ("keepalive", "tiny response, keep-alive, 32 connections", scenario_load("/", "/")),
        ("close", "tiny response, Connection: close on every request",
         scenario_load("/", "/", headers=("Connection: close",))),
        ("body1k", "1 KiB response body", scenario_load("/", "/1k", headers=("x-big: 1024",))),
        ("body64k", "64 KiB response body", scenario_load("/", "/64k", headers=("x-big: 65536",))),
        ("post4k", "4 KiB POST request bodies", scenario_load("/", "/", script=post_script(workdir))),
        ("idle1000", "load plus 1,000 idle keep-alive connections", scenario_load("/", "/", idle=1000)),
        ("static1k", "1 KiB static file (FlexiLib `dir:` route, nginx `root`)",
         scenario_load("/files/1k", "/1k")),
        ("static64k", "64 KiB static file (FlexiLib `dir:` route, nginx `root`)",
         scenario_load("/files/64k", "/64k")),
        ("proxy", "reverse proxy to an upstream (nginx `return 200`, on the load generator's CPU)",
         scenario_load("/", "/")),
        ("https", "tiny response, keep-alive over TLS 1.3 (wrk), 32 connections", scenario_tls("https")),
        ("h2", "tiny response, HTTP/2 over TLS (h2load), 32 connections", scenario_tls("h2")),
        ("rss", "idle RSS after startup and after N requests", scenario_idle_rss),
        ("startup", "time from start to the first served request", scenario_startup),
    ]


# ---------------------------------------------------------------- report

def start_hog(cpu):
    """A busy loop pinned to `cpu` (a neighbour that wants the whole core)."""
    return subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass"])


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, unit=""):
    if value is None:
        return "-"
    if unit == "MB":
        return f"{value / 1024:.1f} MB"
    if unit == "ms":
        return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"
    return f"{value:,.0f}"


def report(name, title, results, args):
    fl, ngx = results["flexilib"], results["nginx"]
    print(f"\n## {name}: {title}  ({len(fl)} rounds, medians)")
    if "rps" in fl[0]:
        rows = []
        for label, rs in results.items():
            rows.append((label, median([r["rps"] for r in rs]), median([r["p50"] for r in rs]),
                         median([r["p99"] for r in rs]), max(r["rss_kb"] for r in rs),
                         max(r["pss_kb"] for r in rs),
                         "; ".join(sorted({r["errors"].strip() for r in rs if r["errors"].strip()}))))
        print(f"{'server':<10} {'req/s':>10} {'p50':>10} {'p99':>10} {'peak RSS':>9} {'PSS':>9}  errors")
        for label, rps, p50, p99, rss, pss, errors in rows:
            print(f"{label:<10} {fmt(rps):>10} {fmt(p50, 'ms'):>10} {fmt(p99, 'ms'):>10} {fmt(rss, 'MB'):>9} "
                  f"{fmt(pss, 'MB'):>9}  {errors}")
        (_, frps, fp50, fp99, frss, _, _), (_, nrps, np50, np99, nrss, _, _) = rows[:2]
        print(f"ratio flexilib/nginx: req/s {frps / nrps:.2f}x, p50 {fp50 / np50:.2f}x, "
              f"p99 {fp99 / np99:.2f}x, RSS {frss / nrss:.2f}x")
        if len(rows) > 2:
            (_, brps, bp50, bp99, brss, _, _) = rows[2]
            print(f"ratio before/nginx:   req/s {brps / nrps:.2f}x, p50 {bp50 / np50:.2f}x, "
                  f"p99 {bp99 / np99:.2f}x, RSS {brss / nrss:.2f}x")
    elif "idle_kb" in fl[0]:
        for label, rs in results.items():
            print(f"{label:<10} RSS idle {fmt(median([r['idle_kb'] for r in rs]), 'MB')}, "
                  f"after {args.requests_for_rss} requests {fmt(median([r['after_kb'] for r in rs]), 'MB')}; "
                  f"PSS idle {fmt(median([r['idle_pss_kb'] for r in rs]), 'MB')}, "
                  f"after {fmt(median([r['after_pss_kb'] for r in rs]), 'MB')}")
    else:
        for label, rs in results.items():
            print(f"{label:<10} start to first response {fmt(median([r['startup_ms'] for r in rs]), 'ms')}")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--requests-for-rss", type=int, default=10000)
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s, 200 requests for RSS")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--before", type=Path, default=None, metavar="DIR",
                        help="another FlexiLib release build (a directory holding flexilib and "
                             "libflexilib_example_rust.so) run as a third server, alternating, "
                             "to compare builds")
    parser.add_argument("--hog", action="store_true",
                        help="a CPU-bound busy loop on the server's core during every run (both servers)")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration, args.requests_for_rss = 1, 1, 200
    check_tools()
    raise_fd_limit()
    if not args.no_build:
        build()
    workdir = Path(tempfile.mkdtemp(prefix="flexilib-bench-"))
    setup = Setup(workdir, args.server_cpu)
    wanted = set(filter(None, args.only.split(",")))
    print(f"# FlexiLib vs nginx: server on CPU {args.server_cpu}, wrk -t1 on CPU {args.client_cpu}, "
          f"{args.duration} s runs, {args.rounds} rounds alternating"
          f"{', a CPU hog on the server CPU' if args.hog else ''}; scratch dir {workdir}")
    for name, title, run in scenarios(workdir):
        if wanted and name not in wanted:
            continue
        results = {"flexilib": [], "nginx": []}
        if args.before:
            results["before"] = []
        upstream = None
        if name == "proxy":
            upstream_port = free_port()
            upstream = setup.nginx(upstream_port, name="upstream", cpu=args.client_cpu)
        try:
            for _ in range(args.rounds):
                for label in results:
                    port = free_port()
                    up = upstream.port if upstream else None
                    static = name.startswith("static")
                    tls = free_port() if name in ("https", "h2") else None
                    if label == "nginx":
                        server = setup.nginx(port, up, tls_port=tls)
                    elif label == "before":
                        server = setup.flexilib(port, up, static, tls, release=args.before.resolve(),
                                                label="before")
                    else:
                        server = setup.flexilib(port, up, static, tls)
                    hog = start_hog(args.server_cpu) if args.hog else None
                    try:
                        results[label].append(run(setup, server, args))
                    finally:
                        if hog:
                            hog.kill()
                            hog.wait()
                        server.stop()
        finally:
            if upstream:
                upstream.stop()
        report(name, title, results, args)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
