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
    python3 bench/workers.py --app all         # hello, Hono and D1 side by side, then build timings

With --app d1 (or all) a D1 read route is measured: a worker answering
`env.DB.prepare('SELECT … WHERE id = ?').bind(7).first()` as JSON from a
seeded table of 100 rows. FlexiLib serves it from its own wrangler.toml (one
`[[d1_databases]]`). workerd's capnp config has no D1 binding of its own
(wrangler dev builds D1 from miniflare's JavaScript over a Durable Object),
but workerd since 2026-12 serves a wrangler.json itself and, with
`--experimental`, runs its `d1_databases` (each in one SQLite-backed Durable
Object): workerd gets the same script that way (`no_bundle`). The D1 route
is also compared with FlexiLib's own hello route of the same run.

With --app hono (or all) the build timings of the Hono project (a copy in
the scratch directory) follow: a cold build (a new server process, nothing
compiled yet), a rebuild after an edit of one source file (src/greet.ts
rewritten -> first response from the new code; and the log's `built in`),
and a cached rebuild (src/index.ts rewritten, content unchanged: every
module comes from the process's compiled-module cache), as medians. (There
is no cache on disk: a new server process compiles the project again, as
the cold build does.)

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
HELLO = "export default {\n  fetch(request, env, ctx) {\n    return new Response('Hello World!');\n  },\n};\n"


def find_workerd(explicit):
    """The workerd binary, or None (with the reason printed) if it cannot be had."""
    if explicit:
        return Path(explicit).resolve()
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


D1_WORKER = """export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname.endsWith("/seed")) {
      await env.DB.exec("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)");
      const insert = env.DB.prepare("INSERT OR REPLACE INTO users (id, name, email) VALUES (?, ?, ?)");
      const rows = [];
      for (let id = 1; id <= 100; id++) rows.push(insert.bind(id, `user ${id}`, `user${id}@example.com`));
      await env.DB.batch(rows);
      return new Response("seeded");
    }
    const user = await env.DB.prepare("SELECT id, name, email FROM users WHERE id = ?").bind(7).first();
    return Response.json(user);
  },
};
"""


def prepare_d1(workdir):
    """The D1 worker's project in workdir/d1, its database seeded by the
    first server that serves it."""
    d1 = workdir / "d1"
    d1.mkdir(exist_ok=True)
    (d1 / "index.js").write_text(D1_WORKER)
    (d1 / "wrangler.toml").write_text('name = "bench-d1"\nmain = "index.js"\ncompatibility_date = "2024-09-01"\n\n'
                                      '[[d1_databases]]\nbinding = "DB"\ndatabase_name = "bench"\n'
                                      'database_id = "bench-d1"\n')
    (workdir / "proxy-d1.ini").write_text(f"/ = worker:{d1 / 'wrangler.toml'}\n")
    theirs = workdir / "d1-workerd"
    theirs.mkdir(exist_ok=True)
    (theirs / "index.js").write_text(D1_WORKER)
    (theirs / "wrangler.json").write_text(
        '{"name": "bench-d1", "main": "index.js", "compatibility_date": "2024-09-01", "no_bundle": true,\n'
        ' "d1_databases": [{"binding": "DB", "database_name": "bench", "database_id": "bench-d1"}]}\n')


def workerd_d1(binary, workdir, port, cpu):
    """workerd serving the D1 worker from its wrangler.json (--experimental
    runs its d1_databases)."""
    theirs = workdir / "d1-workerd"
    return b.Server("workerd", [str(binary), "serve", str(theirs / "wrangler.json"), "--experimental",
                                "-s", f"http=127.0.0.1:{port}", "--data-dir", str(theirs / "state")],
                    dict(os.environ), port, cpu, workdir)


def flexilib(workdir, port, cpu, config_name="proxy.ini"):
    config = workdir / config_name
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


def built_ms(workdir, after):
    """The `built in N ms` of the last `worker ready` line in FlexiLib's
    stderr past byte `after`."""
    text = (workdir / "flexilib.stderr").read_bytes()[after:].decode(errors="replace")
    found = re.findall(r"worker ready: .*built in ([0-9.]+) ms", text)
    return float(found[-1]) if found else None


def wait_body(port, path, want, started, what):
    while True:
        try:
            text = http_body(port, path)
        except OSError:
            text = None
        if text is not None and want in text:
            return (time.monotonic() - started) * 1000
        if time.monotonic() - started > 10:
            b.fail(f"{what}: never served (still {text!r})")
        time.sleep(0.001)


def build_times(workdir, args, count):
    """Cold build, rebuild after an edit, cached rebuild of the Hono project."""
    project = workdir / "hono-build"
    shutil.copytree(HONO, project, symlinks=True, ignore=shutil.ignore_patterns(".wrangler"))
    (workdir / "proxy-build.ini").write_text(f"/ = worker:{project / 'wrangler.toml'}\n")
    greet = project / "src" / "greet.ts"
    original = greet.read_text()
    cold, cold_first, edit, edit_built, cached, cached_built = [], [], [], [], [], []
    log = workdir / "flexilib.stderr"
    for _ in range(count):
        mark = log.stat().st_size if log.exists() else 0
        server = flexilib(workdir, b.free_port(), args.server_cpu, "proxy-build.ini")
        try:
            cold_first.append(server.first_response_s * 1000)
            cold.append(built_ms(workdir, mark))
        finally:
            server.stop()
    port = b.free_port()
    server = flexilib(workdir, port, args.server_cpu, "proxy-build.ini")
    try:
        for i in range(count):
            mark = log.stat().st_size
            staged = project / "src" / ".greet.ts.new"
            staged.write_text(original.replace("`${who}!`", f"`${{who}} (edit {i})!`"))
            started = time.monotonic()
            os.replace(staged, greet)
            edit.append(wait_body(port, "/", f"(edit {i})", started, "the edit"))
            time.sleep(0.3)
            edit_built.append(built_ms(workdir, mark))
        for i in range(count):
            mark = log.stat().st_size
            started = time.monotonic()
            index = project / "src" / "index.ts"
            staged = project / "src" / ".index.ts.new"
            staged.write_bytes(index.read_bytes())
            os.replace(staged, index)
            while built_ms(workdir, mark) is None:
                if time.monotonic() - started > 10:
                    b.fail("rewriting src/index.ts never rebuilt the worker")
                time.sleep(0.001)
            cached.append((time.monotonic() - started) * 1000)
            cached_built.append(built_ms(workdir, mark))
            time.sleep(0.3)
    finally:
        server.stop()
    med = lambda values: statistics.median(v for v in values if v is not None)  # noqa: E731
    print()
    print(f"Build of the Hono project (TypeScript, npm packages; medians of {count}):")
    print("| build | log's `built in` ms | to first response / log line ms |")
    print("|---|---|---|")
    print(f"| cold (new process, nothing compiled) | {med(cold):.1f} | {med(cold_first):.1f} (process start included) |")
    print(f"| rebuild after editing src/greet.ts | {med(edit_built):.1f} | {med(edit):.1f} (edit -> new response) |")
    print(f"| cached rebuild (src/index.ts rewritten, same content) | {med(cached_built):.1f} | {med(cached):.1f} (rewrite -> log line) |")


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
    parser.add_argument("--app", choices=["hello", "hono", "d1", "all"], default="hello",
                        help="hello world (default), the Hono TypeScript project, a D1 read route, or all three")
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
    apps = ["hello", "hono", "d1"] if args.app == "all" else [args.app]
    ours_hello, theirs_hello = "FlexiLib worker (worker:hello.js)", "workerd (same script)"
    ours_hono, theirs_hono = "Hono: FlexiLib (the project, unbundled)", "Hono: workerd (esbuild's bundle of it)"
    ours_d1 = "D1 read: FlexiLib (worker:d1/wrangler.toml)"
    theirs_d1 = "D1 read: workerd (wrangler.json, --experimental)"
    kinds = {}
    if "hello" in apps or "d1" in apps:
        (workdir / "proxy.ini").write_text(
            f"/w = worker:hello.js\n/ = {RELEASE / 'libflexilib_example_rust.so'}\n")
        kinds[ours_hello] = lambda port: (flexilib(workdir, port, args.server_cpu), "/w")
    if "hello" in apps:
        kinds[theirs_hello] = lambda port: (workerd(binary, workdir, port, args.server_cpu), "/")
        kinds["FlexiLib native library route"] = lambda port: (flexilib(workdir, port, args.server_cpu), "/")
    if "hono" in apps:
        prepare_hono(workdir)
        (workdir / "proxy-hono.ini").write_text(f"/ = worker:{HONO / 'wrangler.toml'}\n")
        greeting = '(name = "GREETING", text = "Hello from Hono")'
        kinds[ours_hono] = lambda port: (flexilib(workdir, port, args.server_cpu, "proxy-hono.ini"), "/users/7")
        kinds[theirs_hono] = lambda port: (workerd(binary, workdir, port, args.server_cpu, "hono.js", greeting),
                                           "/users/7")
    if "d1" in apps:
        prepare_d1(workdir)

        def seeded(server):
            if b.http_get(server.port, "/seed") != 200:
                server.stop()
                b.fail(f"the D1 worker could not seed its table; see {workdir}/{server.name}.stderr")
            return server, "/users/7"
        kinds[ours_d1] = lambda port: seeded(flexilib(workdir, port, args.server_cpu, "proxy-d1.ini"))
        kinds[theirs_d1] = lambda port: seeded(workerd_d1(binary, workdir, port, args.server_cpu))
    print(f"# Workers {'/'.join(apps)}: server on CPU {args.server_cpu}, wrk -t1 -c{args.connections} on CPU "
          f"{args.client_cpu}, {args.duration} s runs, {args.rounds} rounds alternating; scratch dir {workdir}")
    if binary is None:
        print("# smoke run without workerd (see above)")
        kinds.pop(theirs_hello, None)
        kinds.pop(theirs_hono, None)
        kinds.pop(theirs_d1, None)
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
    print()
    for ours, theirs, label in ((ours_hello, theirs_hello, "hello world: FlexiLib worker / workerd"),
                                (ours_hono, theirs_hono, "Hono: FlexiLib / workerd"),
                                (ours_d1, theirs_d1, "D1 read: FlexiLib / workerd"),
                                (ours_d1, ours_hello, "D1 read / FlexiLib's own hello route")):
        if ours in results and theirs in results:
            ratio = med(results[ours], "rps") / med(results[theirs], "rps")
            print(f"{label} requests/s: {ratio:.2f}x")
    count = 3 if args.smoke else 10
    if "hello" in apps:
        times = reload_times(workdir, args, count)
        print(f"reload (script rewritten -> first response from the new code): median "
              f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms over {len(times)} edits")
    if "hono" in apps:
        build_times(workdir, args, count)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
