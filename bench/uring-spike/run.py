#!/usr/bin/env python3
"""io_uring spike: the same minimal keep-alive HTTP/1.1 responder on tokio
current_thread (epoll), monoio (io_uring, and its legacy epoll driver as a
control) and tokio-uring, side by side with nginx `return 200`.

    python3 bench/uring-spike/run.py                    # everything, ~8 minutes
    python3 bench/uring-spike/run.py --rounds 3 --duration 3 --no-callgrind
    python3 bench/uring-spike/run.py --smoke            # 1 round of 1 s: checks that it runs

Load: every server pinned to CPU 0 (`taskset -c 0`), `wrk -t1` pinned to
CPU 1, one server at a time, alternating (tokio, monoio, monoio-legacy,
tokio-uring, nginx; repeated --rounds times), medians over the rounds.
Scenarios: `keepalive` (wrk -c32) and `idle1000` (wrk -c32 while 1,000 other
keep-alive connections sit idle after one request each).

Each round holds /tmp/flexilib-bench.lock (flock(2), the same lock as
`flock /tmp/flexilib-bench.lock ...`) so that it never overlaps another
benchmark on the machine. Builds are not under that lock: the script
measures the CPU time that everything else uses (all CPUs' user+system time
from /proc/stat minus its own and its children's): before each round it waits up to --max-wait s for a
quiet machine, and it reruns a round (up to --max-reruns times per scenario)
when others used more than --max-foreign of one CPU during it; each round's
outside load is printed and the report says how many rounds were rerun.

Then, without timing: user-space instructions per request with callgrind
(like bench/callgrind.sh: N1 and N2 requests over one keep-alive connection,
difference divided) and syscalls per request with `strace -f -c` (same
method).
"""

import argparse
import fcntl
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

HERE = Path(__file__).resolve().parent
TARGET = HERE / "target"
RELEASE = TARGET / "release"
LOCK = "/tmp/flexilib-bench.lock"
BODY = "Hello, World!"
TICK = os.sysconf("SC_CLK_TCK")

# name -> argv after the port (None: nginx)
SERVERS = {
    "tokio-ct": ["tokio-ct"],
    "monoio-uring": ["monoio"],
    "monoio-legacy": ["monoio", "legacy"],
    "tokio-uring": ["tokio-uring"],
    "nginx": None,
}
BASELINE = "tokio-ct"


def fail(message):
    print(f"run.py: {message}", file=sys.stderr)
    sys.exit(1)


def build():
    env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
    subprocess.run(["cargo", "build", "--release", "--locked", "--bins", "--quiet"], cwd=HERE, env=env,
                   check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# ---------------------------------------------------------------- processes

def tree_pids(pid):
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


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_ticks(pid, children=True):
    """utime, stime (plus reaped children's) in clock ticks."""
    try:
        fields = stat_fields(pid)
    except OSError:
        return 0, 0
    # fields[0] is the state (field 3); utime is field 14, stime 15, cutime 16, cstime 17
    u, s, cu, cs = (int(x) for x in fields[11:15])
    return (u + cu, s + cs) if children else (u, s)


def all_cpu():
    """pid -> (comm, CPU ticks including reaped children) for every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    comm = f.read().strip()
                if d == "2" or stat_fields(d)[1] == "2":
                    continue  # kernel threads: softirq work for our own loopback traffic lands there
                u, s = cpu_ticks(int(d))
                out[int(d)] = (comm, u + s)
            except OSError:
                pass
    return out


def global_busy():
    """user + nice + system ticks of all CPUs (no irq/softirq, no idle/iowait)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return sum(int(x) for x in fields[1:4])


def own_cpu():
    """CPU seconds of this script and its reaped children (wrk, servers, taskset)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class ForeignCpu:
    """CPU time used by everything but this script's tree over a span: all
    CPUs' user+system time (/proc/stat, so short-lived compiler processes
    count too) minus this script's own and its children's (every server and
    wrk it started has been reaped by the time stop() is called)."""

    def __init__(self):
        self.start = all_cpu()
        self.busy0, self.own0 = global_busy(), own_cpu()
        self.t0 = time.monotonic()

    def stop(self):
        wall = time.monotonic() - self.t0
        used = max(0.0, (global_busy() - self.busy0) / TICK - (own_cpu() - self.own0))
        # who: the largest per-process deltas (with reaped children), for the log only
        end, who, mine = all_cpu(), {}, set(tree_pids(os.getpid()))
        for pid, (comm, ticks) in end.items():
            delta = ticks - self.start.get(pid, (comm, 0))[1]
            if pid not in mine and delta > 0:
                who[comm] = who.get(comm, 0) + delta
        top = sorted(who.items(), key=lambda kv: -kv[1])[:3]
        return used, wall, ", ".join(f"{c} {t / TICK:.1f}s" for c, t in top)


class Server:
    def __init__(self, name, port, cpu, workdir):
        self.name, self.port = name, port
        argv = SERVERS[name]
        if argv is None:
            argv = ["nginx", "-c", str(nginx_conf(workdir, port)), "-p", str(workdir)]
        else:
            argv = [str(RELEASE / argv[0]), str(port)] + argv[1:]
        self.proc = subprocess.Popen(["taskset", "-c", str(cpu)] + argv, stdout=subprocess.DEVNULL,
                                     stderr=open(workdir / f"{name}.stderr", "ab"), cwd=workdir)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail(f"{name} exited at startup; see {workdir}/{name}.stderr")
            if http_ok(port):
                return
            time.sleep(0.005)
        self.stop()
        fail(f"{name} did not answer within 10 s")

    def cpu(self):
        """(user, system) seconds of the whole process tree (nginx: master + worker)."""
        u = s = 0
        for p in tree_pids(self.proc.pid)[1:] if self.name == "nginx" else [self.proc.pid]:
            pu, ps = cpu_ticks(p, children=False)
            u, s = u + pu, s + ps
        return u / TICK, s / TICK

    def rss_kb(self):
        total = 0
        for p in tree_pids(self.proc.pid):
            try:
                with open(f"/proc/{p}/status") as f:
                    total += sum(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
            except OSError:
                pass
        return total

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def nginx_conf(workdir, port):
    conf = workdir / f"nginx-{port}.conf"
    (workdir / "logs").mkdir(exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""
    # As bench/bench.py, but with the spike's body and no access log (the
    # spike's responders log nothing either).
    conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
master_process on;
pid {workdir}/nginx-{port}.pid;
error_log {workdir}/logs/error.log warn;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "{BODY}"; }}
    }}
}}
""")
    return conf


# ---------------------------------------------------------------- load

LATENCY_RE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def to_ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(port, cpu, duration, connections):
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
            f"http://127.0.0.1:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    lat = {p: to_ms(v, u) for p, v, u in LATENCY_RE.findall(out)}
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "requests": total,
            "p50": lat.get("50"), "p99": lat.get("99"),
            "errors": ((errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else "")).strip()}


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


def measure(name, args, workdir, connections, idle, foreign):
    port = free_port()
    server = Server(name, port, args.server_cpu, workdir)
    try:
        held = IdleConnections(port, idle) if idle else None
        u0, s0 = server.cpu()
        r = wrk(port, args.client_cpu, args.duration, connections)
        u1, s1 = server.cpu()
        r["user_us"] = (u1 - u0) / r["requests"] * 1e6
        r["sys_us"] = (s1 - s0) / r["requests"] * 1e6
        r["rss_kb"] = server.rss_kb()
        if held:
            held.close()
        return r
    finally:
        server.stop()


def wait_quiet(args):
    """Waits (up to --max-wait s) until other processes use less than
    --max-foreign of a CPU over 2 s; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.max_wait:
        probe = ForeignCpu()
        time.sleep(2)
        used, wall, who = probe.stop()
        if used / wall <= args.max_foreign:
            break
        print(f"  waiting for a quiet machine: others use {used / wall:.0%} of a CPU ({who})", flush=True)
    return time.monotonic() - t0


def run_scenario(label, connections, idle, names, args, workdir, log):
    results = {n: [] for n in names}
    good, reruns, extra, loaded = 0, 0, 0, 0
    while good < args.rounds:
        wait_quiet(args)
        with open(LOCK, "w") as lockf:
            t = time.monotonic()
            fcntl.flock(lockf, fcntl.LOCK_EX)
            waited = time.monotonic() - t
            load0 = open("/proc/loadavg").read().split()[:3]
            foreign = ForeignCpu()
            round_results = {n: measure(n, args, workdir, connections, idle, foreign) for n in names}
            used, wall, who = foreign.stop()
            load1 = open("/proc/loadavg").read().split()[:3]
        busy = used / wall
        note = (f"{label} round {good + 1}: other processes used {used:.1f} CPU-s in {wall:.0f} s "
                f"({busy:.0%} of a CPU{'; ' + who if who else ''}); loadavg {' '.join(load0)} -> "
                f"{' '.join(load1)}" + (f"; waited {waited:.0f} s for the lock" if waited > 1 else ""))
        if busy > args.max_foreign and extra < args.max_reruns:
            extra += 1
            reruns += 1
            log.append(note + " -> rerun")
            print("  " + note + " -> rerun", flush=True)
            continue
        if busy > args.max_foreign:
            note += " (kept: rerun limit reached)"
            loaded += 1
        log.append(note)
        print("  " + note, flush=True)
        for n in names:
            results[n].append(round_results[n])
        good += 1
    return results, reruns, loaded


# ---------------------------------------------------------------- counts

CLIENT = r"""
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        i = buf.find(b"\r\n\r\n")
        if i >= 0 and len(buf) >= i + 4 + 13:
            buf = buf[i + 4 + 13:]
            break
        d = s.recv(4096)
        if not d:
            sys.exit("connection closed")
        buf += d
s.close()
"""


def counted_run(name, tool, n, workdir):
    """Runs the server under `tool` (callgrind or strace), sends n keep-alive
    requests on one connection, stops it; returns the total count."""
    port = free_port()
    out = workdir / f"{tool}.{name}.{n}"
    argv = SERVERS[name]
    binary = [str(RELEASE / argv[0]), str(port)] + argv[1:]
    if tool == "callgrind":
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    else:
        wrapper = ["strace", "-f", "-c", "-U", "calls,name", "-o", str(out)]
    err = open(workdir / f"{tool}.{name}.{n}.stderr", "wb")
    env = dict(os.environ, SPIKE_EXIT_ON_EOF="1")  # the client's EOF ends it: see peer_closed in src/lib.rs
    proc = subprocess.Popen(wrapper + binary, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 60
        while not http_ok(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        subprocess.run([sys.executable, "-c", CLIENT, str(port), str(n)], check=True, timeout=600)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # the client failed: stop it
            # strace: signal the traced server itself (strace would only detach)
            victims = tree_pids(proc.pid)[1:] if tool == "strace" else [proc.pid]
            for pid in victims or [proc.pid]:
                try:
                    os.kill(pid, 15)
                except OSError:
                    pass
            proc.wait(timeout=60)
    text = out.read_text() if out.exists() else ""
    if tool == "callgrind":
        m = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    else:
        m = re.search(r"^\s*(\d+)\s+total\s*$", text, re.M)
    return int(m.group(1)) if m else None


def per_request(name, tool, n1, n2, workdir):
    a, b = counted_run(name, tool, n1, workdir), counted_run(name, tool, n2, workdir)
    if a is None or b is None:
        return None
    return (b - a) / (n2 - n1)


def syscall_breakdown(name, n1, n2, workdir):
    """Per-request count of each syscall (strace -c), from the two strace runs."""
    def table(n):
        text = (workdir / f"strace.{name}.{n}").read_text()
        rows = {}
        for line in text.splitlines():
            f = line.split()
            if len(f) == 2 and f[0].isdigit() and f[1] != "total":
                rows[f[1]] = int(f[0])
        return rows
    try:
        a, b = table(n1), table(n2)
    except OSError:
        return ""
    per = {k: (b.get(k, 0) - a.get(k, 0)) / (n2 - n1) for k in set(a) | set(b)}
    return " ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.05)


# ---------------------------------------------------------------- report

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def round_ratio(results, name):
    """Median over rounds of (this server's req/s / tokio-ct's in the same
    round): less sensitive to drift between rounds than a ratio of medians."""
    if BASELINE not in results:
        return "-"
    rs = [a["rps"] / b["rps"] for a, b in zip(results[name], results[BASELINE])]
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"


def report(title, results, counts):
    names = list(results)
    med = {n: {k: median([r[k] for r in results[n]]) for k in ("rps", "p50", "p99", "user_us", "sys_us")}
           for n in names}
    rounds = len(results[names[0]])
    print(f"\n## {title}  ({rounds} rounds, medians)")
    head = (f"| {'server':<13} | {'req/s':>9} | {'vs tokio':>8} | {'vs nginx':>8} | {'per-round vs tokio':>18} "
            f"| {'p50 ms':>7} | {'p99 ms':>7} | {'p99 vs tokio':>12} | {'p99 vs nginx':>12} | {'user us/req':>11} "
            f"| {'sys us/req':>10} | {'instr/req':>9} | {'syscalls/req':>12} |")
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    base, ngx = med.get(BASELINE), med.get("nginx")
    for n in names:
        m = med[n]
        ir, sc = counts.get(n, (None, None))
        print(f"| {n:<13} | {m['rps']:>9,.0f} | {ratio(m['rps'], base and base['rps']):>8} "
              f"| {ratio(m['rps'], ngx and ngx['rps']):>8} | {round_ratio(results, n):>18} "
              f"| {m['p50']:>7.3f} | {m['p99']:>7.3f} "
              f"| {ratio(m['p99'], base and base['p99']):>12} | {ratio(m['p99'], ngx and ngx['p99']):>12} "
              f"| {m['user_us']:>11.2f} | {m['sys_us']:>10.2f} "
              f"| {(f'{ir:,.0f}' if ir else '-'):>9} | {(f'{sc:.2f}' if sc else '-'):>12} |")
    print("\nper-round req/s:")
    for n in names:
        errors = "; ".join(sorted({r["errors"] for r in results[n] if r["errors"]}))
        print(f"  {n:<13} " + " ".join(f"{r['rps']:,.0f}" for r in results[n])
              + f"   p99 ms: " + " ".join(f"{r['p99']:.3f}" for r in results[n])
              + (f"   errors: {errors}" if errors else ""))
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--only", default="keepalive,idle1000", help="scenarios: keepalive,idle1000")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated, in round order")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--max-foreign", type=float, default=0.10,
                        help="rerun a round when other processes used more than this fraction of one CPU")
    parser.add_argument("--max-reruns", type=int, default=5, help="per scenario")
    parser.add_argument("--max-wait", type=float, default=120,
                        help="seconds to wait for a quiet machine before each round (then it runs anyway)")
    parser.add_argument("--n1", type=int, default=2000, help="callgrind/strace: requests in the first run")
    parser.add_argument("--n2", type=int, default=10000, help="callgrind/strace: requests in the second run")
    parser.add_argument("--no-callgrind", action="store_true", help="skip the instruction and syscall counts")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s, small counts")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration, args.n1, args.n2 = 1, 1, 100, 300
    for tool, pkg in (("wrk", "wrk"), ("nginx", "nginx-light"), ("taskset", "util-linux"), ("flock", "util-linux")):
        if not shutil.which(tool):
            fail(f"missing {tool} (Debian package {pkg})")
    names = [n for n in args.servers.split(",") if n]
    for n in names:
        if n not in SERVERS:
            fail(f"unknown server {n}; known: {', '.join(SERVERS)}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not args.no_build:
        build()
    workdir = Path(tempfile.mkdtemp(prefix="uring-spike-"))
    print(f"# io_uring spike: servers on CPU {args.server_cpu}, wrk -t1 on CPU {args.client_cpu}, "
          f"{args.duration} s runs, {args.rounds} rounds alternating {' '.join(names)}; "
          f"kernel {os.uname().release}; scratch dir {workdir}", flush=True)

    # Counts first: they are not timed and so need no lock.
    counts = {}
    if not args.no_callgrind:
        have_valgrind, have_strace = shutil.which("valgrind"), shutil.which("strace")
        for n in names:
            if n == "nginx":
                continue
            ir = per_request(n, "callgrind", args.n1, args.n2, workdir) if have_valgrind else None
            sc = per_request(n, "strace", args.n1, args.n2, workdir) if have_strace else None
            counts[n] = (ir, sc)
            detail = syscall_breakdown(n, args.n1, args.n2, workdir) if sc else ""
            print(f"  {n}: {f'{ir:,.0f}' if ir else '-'} user-space instructions/request (callgrind), "
                  f"{f'{sc:.2f}' if sc else '-'} syscalls/request (strace -f -c: {detail}); one connection, "
                  f"{args.n2} - {args.n1} requests", flush=True)

    scenarios = {"keepalive": ("keepalive: wrk -t1 -c32, tiny body", 32, 0),
                 "idle1000": ("idle1000: wrk -t1 -c32 plus 1,000 idle keep-alive connections", 32, 1000)}
    log, all_results = [], []
    for key in [s for s in args.only.split(",") if s]:
        title, conns, idle = scenarios[key]
        print(f"\n# {title}", flush=True)
        results, reruns, loaded = run_scenario(key, conns, idle, names, args, workdir, log)
        title += f"; {reruns} round(s) rerun for outside load" if reruns else ""
        title += f"; {loaded} round(s) kept with outside load over {args.max_foreign:.0%} of a CPU" if loaded else ""
        all_results.append((title, results))
        report(all_results[-1][0], results, counts)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
