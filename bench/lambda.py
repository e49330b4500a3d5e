#!/usr/bin/env python3
"""Lambda benchmark: warm requests through a Lambda route, side by side.

Three servers answer `GET /fn/hello` with a trivial body, in alternation
(A B C A B C ..., --rounds times), each pinned to one core and wrk to the
other:

* native   FlexiLib, the Rust example library (examples/rust-sample, body " N")
* lambda   FlexiLib, the Rust example Lambda function (examples/lambda-rust,
           AWS's lambda_http; body "hello from lambda_http") on a lambda: route
* sam      FlexiLib, the same function in a SAM template (provided.al2023,
           an HttpApi event) on a sam: route
* cargo-lambda  `cargo lambda watch --release` serving the same function
           (its Function URL emulation), if cargo-lambda is installed (PyPI
           package `cargo-lambda`, e.g. in target/lambda-venv)

It prints median requests/s, p50 and p99 at `-c1` and `-c8`, the CPU time
per request at `-c8` of the server's processes and of the function's (the
instances FlexiLib or cargo-lambda started), the overhead
of a warm invoke over a library call (p50 at -c1, lambda minus native), the
cold start (server start to the first function response, and the first
request's time), the RSS of one idle instance, and how long a code change
takes to reach clients (a new `bootstrap` renamed into place; a changed
Python file).

    python3 bench/lambda.py                 # about 2 minutes after the builds
    python3 bench/lambda.py --smoke         # a few seconds: checks that it runs
    python3 bench/lambda.py --no-cargo-lambda

It builds FlexiLib in release mode and runs scripts/install-lambda-clients.sh.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the shared helpers: wrk, processes, memory)

ROOT = bench.ROOT
RELEASE = bench.RELEASE
BOOTSTRAP = ROOT / "target" / "lambda-rust" / "release" / "bootstrap"
PATH_UNDER_TEST = "/fn/hello"


def build():
    subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet", *bench.NOT_BENCHED], cwd=ROOT, check=True)
    subprocess.run([str(ROOT / "scripts" / "install-lambda-clients.sh")], cwd=ROOT, check=True)


def cargo_lambda():
    """The cargo-lambda executable, or None."""
    for candidate in (ROOT / "target" / "lambda-venv" / "bin" / "cargo-lambda", shutil.which("cargo-lambda")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def get(port, path, timeout=10.0):
    """One GET on a fresh connection: (status or None, seconds)."""
    started = time.monotonic()
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None, time.monotonic() - started
    try:
        status = int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = None
    return status, time.monotonic() - started


class Proc:
    """A server process pinned to a core, ready once `ready_path` answers."""

    def __init__(self, name, argv, env, port, cpu, workdir, ready_path, cwd=None, ready_timeout=30):
        self.name, self.port = name, port
        # Logs outside the config's directory, which the server watches.
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)
        self.out = open(logs / f"{name}.stdout", "ab")
        self.err = open(logs / f"{name}.stderr", "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["taskset", "-c", str(cpu)] + argv, env=env, stdout=self.out,
                                     stderr=self.err, cwd=cwd or workdir, start_new_session=True)
        deadline = self.started + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                bench.fail(f"{name} exited at startup; see {logs}/{name}.stderr")
            status, _ = get(port, ready_path, timeout=1)
            if status is not None:
                self.ready_s = time.monotonic() - self.started
                return
            time.sleep(0.005)
        self.stop()
        bench.fail(f"{name} did not answer within {ready_timeout} s; see {logs}/{name}.stderr")

    def stop(self):
        try:
            os.killpg(self.proc.pid, 15)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


def flexilib(workdir, config_text, cpu):
    port = bench.free_port()
    config = workdir / "proxy.ini"
    config.write_text(config_text)
    env = dict(os.environ, PORT=str(port), LISTEN_ADDRESS="127.0.0.1", RUST_LOG="warn",
               FLEXILIB_CONFIG=str(config))
    # Ready when routing answers: a path no route takes gets 404 and starts no instance.
    return Proc("flexilib", [str(RELEASE / "flexilib")], env, port, cpu, workdir, "/ready-probe")


def start(kind, workdir, args):
    if kind == "native":
        return flexilib(workdir, f"/ = {RELEASE / 'libflexilib_example_rust.so'}\n", args.server_cpu)
    if kind == "lambda":
        return flexilib(workdir, f"/fn = lambda:{BOOTSTRAP} name=hello concurrency=16\n", args.server_cpu)
    if kind == "sam":
        app = workdir / "sam-app"
        (app / "fn").mkdir(parents=True, exist_ok=True)
        shutil.copy(BOOTSTRAP, app / "fn" / "bootstrap")
        (app / "template.yaml").write_text(SAM_TEMPLATE)
        return flexilib(workdir, f"/fn = sam:{app / 'template.yaml'}\n", args.server_cpu)
    port = bench.free_port()
    env = dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "target" / "lambda-rust"))
    argv = [args.cargo_lambda, "lambda", "watch", "--release", "--invoke-address", "127.0.0.1",
            "--invoke-port", str(port)]
    return Proc("cargo-lambda", argv, env, port, args.server_cpu, workdir, "/",
                cwd=ROOT / "examples" / "lambda-rust", ready_timeout=600)


SAM_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: bootstrap
      Runtime: provided.al2023
      ReservedConcurrentExecutions: 16
      Events:
        Any:
          Type: HttpApi
          Properties:
            Path: /{proxy+}
            Method: ANY
"""


def cpu_ticks(pid):
    """User plus system CPU time of a process, in clock ticks (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def server_pids(kind, pids):
    """The server's own processes among a process tree (the rest run the function)."""
    # FlexiLib: the supervisor (taskset exec'd into it) and the worker;
    # cargo-lambda: itself.
    return set(pids[:1] if kind == "cargo-lambda" else pids[:2])


def path_for(kind):
    return "/lambda-url/bootstrap/hello" if kind == "cargo-lambda" else PATH_UNDER_TEST


def instance_rss_kb(server):
    """RSS of each Lambda instance (the worker's children)."""
    pids = bench.tree_pids(server.proc.pid)
    # supervisor (taskset exec'd into it), worker, then the instances
    return [bench.status_kb(p, "VmRSS") for p in pids[2:]]


def run_round(kind, workdir, args):
    server = start(kind, workdir, args)
    try:
        result = {}
        path = path_for(kind)
        # cargo lambda watch compiles the function on its first request.
        status, first = get(server.port, path, timeout=900)
        if status != 200:
            bench.fail(f"{kind}: GET {path} answered {status}; see {workdir}")
        result["first_ms"] = first * 1e3
        result["start_to_first_ms"] = (server.ready_s + first) * 1e3
        if kind in ("lambda", "sam"):
            time.sleep(0.2)
            rss = instance_rss_kb(server)
            result["instance_rss_kb"] = rss[0] if rss else 0
        for connections in (1, 8):
            bench.wrk(server.port, path, args.client_cpu, 1, connections)  # warm-up
            pids = bench.tree_pids(server.proc.pid)
            before = {pid: cpu_ticks(pid) for pid in pids}
            r = bench.wrk(server.port, path, args.client_cpu, args.duration, connections)
            if r["errors"].strip():
                bench.fail(f"{kind}: wrk reported errors: {r['errors']}")
            # Processes that ended meanwhile are not counted (none should).
            spent = {pid: cpu_ticks(pid) - before.get(pid, 0) for pid in bench.tree_pids(server.proc.pid)}
            own = server_pids(kind, pids)
            requests = max(r["rps"] * args.duration, 1)
            tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
            r["server_us"] = sum(t for pid, t in spent.items() if pid in own) * tick_us / requests
            r["function_us"] = sum(t for pid, t in spent.items() if pid not in own) * tick_us / requests
            result[f"c{connections}"] = r
        return result
    finally:
        server.stop()


def measure_reload(workdir, args, rounds=10):
    """Median ms from a new executable renamed into place to the first
    response from an instance of it (Rust example), and from a changed
    Python file to the first response of the new code (awslambdaric)."""
    results = {}
    fn = workdir / "fn"
    fn.mkdir(exist_ok=True)
    shutil.copy(BOOTSTRAP, fn / "bootstrap")
    python = ROOT / "target" / "lambda-venv" / "bin" / "python3"
    source = (ROOT / "examples" / "lambda-python" / "app.py").read_text()
    (fn / "app.py").write_text(source)
    config = "/rs = lambda:fn/bootstrap name=rs\n"
    if python.exists():
        config += f"/py = lambda:{python} -m awslambdaric app.handler name=py dir=fn\n"
    server = flexilib(workdir, config, args.server_cpu)

    def body(path):
        status, data = None, b""
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(request)
            while chunk := s.recv(65536):
                data += chunk
        head, _, content = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            bench.fail(f"GET {path} answered {status} during the reload measurement")
        return content

    try:
        times = []
        for _ in range(rounds):
            before = body("/rs/pid")
            shutil.copy(BOOTSTRAP, fn / "bootstrap.new")
            started = time.monotonic()
            os.rename(fn / "bootstrap.new", fn / "bootstrap")
            while body("/rs/pid") == before:
                pass
            times.append((time.monotonic() - started) * 1e3)
        results["executable"] = times
        if python.exists():
            times = []
            for n in range(rounds):
                body("/py/version")
                (fn / ".app.py.new").write_text(source.replace('VERSION = "1"', f'VERSION = "v{n}"'))
                started = time.monotonic()
                os.rename(fn / ".app.py.new", fn / "app.py")
                while body("/py/version") != f"v{n}".encode():
                    pass
                times.append((time.monotonic() - started) * 1e3)
            results["python"] = times
    finally:
        server.stop()
    return results


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--server-cpu", default="0", help="CPU list for the servers (taskset -c)")
    parser.add_argument("--client-cpu", default="1", help="CPU list for wrk (taskset -c)")
    parser.add_argument("--unpinned", action="store_true",
                        help="servers and wrk may use every CPU (instances then run beside the server)")
    parser.add_argument("--smoke", action="store_true", help="one short round (checks that it runs)")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--no-cargo-lambda", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration = 1, 1
    if args.unpinned:
        args.server_cpu = args.client_cpu = f"0-{(os.cpu_count() or 1) - 1}"
    missing = [tool for tool in ("wrk", "taskset") if not shutil.which(tool)]
    if missing:
        bench.fail("missing tools: " + ", ".join(missing) + " (apt-get install -y wrk util-linux)")
    if not args.no_build:
        build()
    if not BOOTSTRAP.exists():
        bench.fail(f"{BOOTSTRAP} is missing: run scripts/install-lambda-clients.sh")
    kinds = ["native", "lambda", "sam"]
    args.cargo_lambda = None if args.no_cargo_lambda or args.smoke else cargo_lambda()
    if args.cargo_lambda:
        kinds.append("cargo-lambda")
    elif not args.no_cargo_lambda and not args.smoke:
        print("# cargo-lambda not found (pip install cargo-lambda into target/lambda-venv): skipped")
    bench.raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="flexilib-lambda-bench-"))
    print(f"# server on CPU {args.server_cpu}, wrk -t1 on CPU {args.client_cpu}, {args.duration} s runs, "
          f"{args.rounds} rounds alternating; GET {PATH_UNDER_TEST}; scratch dir {workdir}")
    results = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            results[kind].append(run_round(kind, workdir, args))
    print(f"\n{'server':<14}{'c1 req/s':>10}{'c1 p50':>10}{'c1 p99':>10}{'c8 req/s':>10}{'c8 p50':>10}"
          f"{'c8 p99':>10}{'srv µs':>8}{'fn µs':>8}{'first req':>11}{'start→1st':>11}")
    for kind in kinds:
        rows = results[kind]
        line = f"{kind:<14}"
        for c in ("c1", "c8"):
            line += f"{med([r[c]['rps'] for r in rows]):>10.0f}"
            line += f"{med([r[c]['p50'] for r in rows]):>8.3f}ms{med([r[c]['p99'] for r in rows]):>8.3f}ms"
        line += f"{med([r['c8']['server_us'] for r in rows]):>8.0f}{med([r['c8']['function_us'] for r in rows]):>8.0f}"
        line += f"{med([r['first_ms'] for r in rows]):>9.1f}ms{med([r['start_to_first_ms'] for r in rows]):>9.1f}ms"
        print(line)
    native_p50 = med([r["c1"]["p50"] for r in results["native"]])
    lambda_p50 = med([r["c1"]["p50"] for r in results["lambda"]])
    print(f"\nwarm invoke overhead over a library call (p50 at -c1): {(lambda_p50 - native_p50) * 1e3:.0f} µs")
    print(f"lambda / native requests/s at -c8: "
          f"{med([r['c8']['rps'] for r in results['lambda']]) / med([r['c8']['rps'] for r in results['native']]):.2f}")
    if "cargo-lambda" in results:
        for kind in ("lambda", "sam"):
            for c in ("c1", "c8"):
                print(f"{kind} / cargo lambda watch requests/s at -{c}: "
                      f"{med([r[c]['rps'] for r in results[kind]]) / med([r[c]['rps'] for r in results['cargo-lambda']]):.2f}")
    print("CPU per request at -c8 (server + function): "
          + ", ".join(f"{kind} {med([r['c8']['server_us'] for r in results[kind]]):.0f} + "
                      f"{med([r['c8']['function_us'] for r in results[kind]]):.0f} µs" for kind in kinds))
    print(f"idle instance RSS: {med([r['instance_rss_kb'] for r in results['lambda']]) / 1024:.1f} MB")
    for kind, times in measure_reload(workdir, args, rounds=3 if args.smoke else 10).items():
        print(f"hot reload, {kind} changed -> first response from the new code: median {med(times):.1f} ms "
              f"(min {min(times):.1f}, max {max(times):.1f}, {len(times)} changes)")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
