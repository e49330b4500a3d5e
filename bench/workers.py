#!/usr/bin/env python3
"""Cloudflare Workers on FlexiLib against workerd, and against a native
library route, side by side.

One hello-world worker (`new Response('Hello World!')`) is served by
FlexiLib (`/w = worker:hello.js`), by workerd (`workerd serve` with a capnp
config, the same script), and, for scale, FlexiLib's native Rust example
library. Runs alternate (A B C A B C …, --rounds times), the server pinned to
one core and wrk to another, as in bench.py. Reported: median requests/s,
p50/p99 latency, and the RSS of each server's whole process tree idle (after
start and one request) and after the load; then FlexiLib's reload time for
the worker (script rewritten → first response from the new code).

    python3 bench/workers.py                   # 3 rounds of 10 s
    python3 bench/workers.py --smoke           # a few seconds: checks that it runs
    python3 bench/workers.py --workerd /path/to/workerd
    python3 bench/workers.py --app hono        # the Hono TypeScript project instead

With --app hono the app is examples/worker-hono-ts (TypeScript, npm
packages: `scripts/install-worker-packages.sh` installs them), requested at
/users/7: FlexiLib runs the project unbundled (`worker:wrangler.toml`),
workerd runs esbuild's bundle of it (esbuild from npm, into bench/.workerd,
with wrangler's conditions), as `wrangler dev` would feed it.

workerd comes from npm (`@cloudflare/workerd-linux-64`); without --workerd
it is looked for in bench/.workerd and installed there with npm if missing.
"""

import argparse
import os
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
HELLO = "export default {\n  fetch(request, env, ctx) {\n    return new Response('Hello World!');\n  },\n};\n"


def find_workerd(explicit):
    """The workerd binary, or None (with the reason printed) if it cannot be had."""
    if explicit:
        return Path(explicit)
    cache = ROOT / "bench" / ".workerd"
    binary = cache / "node_modules" / "@cloudflare" / "workerd-linux-64" / "bin" / "workerd"
    if not binary.exists():
        if not shutil.which("npm"):
            print("bench: workerd not found and npm is missing (pass --workerd PATH)", file=sys.stderr)
            return None
        cache.mkdir(parents=True, exist_ok=True)
        installed = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(cache),
                                    "@cloudflare/workerd-linux-64"], stdout=subprocess.DEVNULL)
        if installed.returncode != 0 or not binary.exists():
            print("bench: npm could not install @cloudflare/workerd-linux-64", file=sys.stderr)
            return None
    return binary


def workerd_config(workdir, port, module="hello.js", bindings=""):
    config = workdir / f"workerd-{port}.capnp"
    config.write_text(f"""using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .hello) ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);
const hello :Workerd.Worker = (
  modules = [ (name = "{module}", esModule = embed "{module}") ],
  compatibilityDate = "2024-09-01",
  bindings = [ {bindings} ],
);
""")
    return config


HONO = ROOT / "examples" / "worker-hono-ts"


def prepare_hono(workdir):
    """Installs the Hono project's packages and esbuild, and bundles the
    project for workerd (hono.js in workdir)."""
    subprocess.run([str(ROOT / "scripts" / "install-worker-packages.sh")], check=True)
    cache = ROOT / "bench" / ".workerd"
    esbuild = cache / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(cache), "esbuild@0.28"],
                       stdout=subprocess.DEVNULL, check=True)
    subprocess.run([str(esbuild), str(HONO / "src" / "index.ts"), "--bundle", "--format=esm",
                    "--platform=browser", "--conditions=workerd,worker,browser",
                    f"--outfile={workdir / 'hono.js'}", "--log-level=warning"], check=True)


def flexilib(workdir, port, cpu):
    config = workdir / "proxy.ini"
    env = dict(os.environ, PORT=str(port), LISTEN_ADDRESS="127.0.0.1", RUST_LOG="warn",
               FLEXILIB_CONFIG=str(config))
    return b.Server("flexilib", [str(RELEASE / "flexilib")], env, port, cpu, workdir)


def workerd(binary, workdir, port, cpu, module="hello.js", bindings=""):
    config = workerd_config(workdir, port, module, bindings)
    return b.Server("workerd", [str(binary), "serve", str(config)], dict(os.environ), port, cpu, workdir)


def measure(server, path, args):
    b.http_get(server.port, path)
    time.sleep(0.5)
    idle = server.rss_kb()
    result = b.wrk(server.port, path, args.client_cpu, args.duration, args.connections)
    time.sleep(0.5)
    result["idle_kb"] = idle
    result["after_kb"] = server.rss_kb()
    return result


def reload_times(workdir, args, count):
    """Rewrites the worker and times the first response from the new code."""
    port = b.free_port()
    server = flexilib(workdir, port, args.server_cpu)
    times = []
    try:
        for i in range(count):
            body = f"version {i}"
            staged = workdir / ".hello.js.new"
            staged.write_text(HELLO.replace("Hello World!", body))
            started = time.monotonic()
            os.replace(staged, workdir / "hello.js")
            while True:
                text = http_body(port, "/w")
                if text == body:
                    break
                if time.monotonic() - started > 5:
                    b.fail(f"the reload never served (still {text!r})")
            times.append((time.monotonic() - started) * 1000)
            time.sleep(0.2)
    finally:
        server.stop()
        (workdir / "hello.js").write_text(HELLO)
    return times


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
    return data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--workerd", help="path of the workerd binary")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="one short round")
    parser.add_argument("--app", choices=["hello", "hono"], default="hello",
                        help="hello world (default) or the Hono TypeScript project")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration = 1, 2
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            b.fail(f"{tool} is missing (apt-get install -y wrk util-linux)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet", *b.NOT_BENCHED], cwd=ROOT, check=True)
    binary = find_workerd(args.workerd)
    if binary is None and not args.smoke:
        b.fail("workerd is needed for the comparison")
    b.raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="flexilib-workers-bench-"))
    (workdir / "hello.js").write_text(HELLO)
    ours_name, theirs_name = "FlexiLib worker (worker:hello.js)", "workerd (same script)"
    if args.app == "hono":
        prepare_hono(workdir)
        (workdir / "proxy.ini").write_text(f"/ = worker:{HONO / 'wrangler.toml'}\n")
        ours_name = "FlexiLib worker (the project, unbundled)"
        theirs_name = "workerd (esbuild's bundle of it)"
        greeting = '(name = "GREETING", text = "Hello from Hono")'
        kinds = {
            ours_name: lambda port: (flexilib(workdir, port, args.server_cpu), "/users/7"),
            theirs_name: lambda port: (workerd(binary, workdir, port, args.server_cpu, "hono.js", greeting),
                                       "/users/7"),
        }
    else:
        (workdir / "proxy.ini").write_text(
            f"/w = worker:hello.js\n/ = {RELEASE / 'libflexilib_example_rust.so'}\n")
        kinds = {
            ours_name: lambda port: (flexilib(workdir, port, args.server_cpu), "/w"),
            theirs_name: lambda port: (workerd(binary, workdir, port, args.server_cpu), "/"),
            "FlexiLib native library route": lambda port: (flexilib(workdir, port, args.server_cpu), "/"),
        }
    print(f"# Workers {args.app}: server on CPU {args.server_cpu}, wrk -t1 -c{args.connections} on CPU "
          f"{args.client_cpu}, {args.duration} s runs, {args.rounds} rounds alternating; scratch dir {workdir}")
    if binary is None:
        print("# smoke run without workerd (see above)")
        del kinds[theirs_name]
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
    if theirs_name in results:
        ours = med(results[ours_name], "rps")
        theirs = med(results[theirs_name], "rps")
        print(f"\nFlexiLib worker / workerd requests/s: {ours / theirs:.2f}x")
    if args.app == "hono":
        shutil.rmtree(workdir, ignore_errors=True)
        return
    times = reload_times(workdir, args, 3 if args.smoke else 10)
    print(f"reload (script rewritten -> first response from the new code): median {statistics.median(times):.1f} ms, "
          f"max {max(times):.1f} ms over {len(times)} edits")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
