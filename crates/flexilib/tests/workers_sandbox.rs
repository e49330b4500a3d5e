//! Cloudflare Workers emulation, the sandbox: a worker imports modules only
//! from its own project directory (no absolute paths, no `../` out of it,
//! no symbolic link out of it, no FIFO, no device, nothing that is not a
//! `.js`/`.mjs` file, nothing over the size cap) and no error shows a
//! file's content; a microtask or timer storm cannot wedge its JS thread;
//! the CPU limit counts CPU time, not time the thread waited for a CPU;
//! each JS thread's queue is bounded; `/__scheduled` runs `scheduled()`
//! only on a route that asks for it.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{mkfifo, request_in_background, worker_dir, Client, ServerBuilder};

/// Answers `?m=SPECIFIER` with what `import(SPECIFIER)` gave: 200 and the
/// export names, or 400 and the error.
const IMPORTER: &str = r#"
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/fine') return new Response('fine');
    const specifier = url.searchParams.get('m');
    try {
      const module = await import(specifier);
      return new Response('loaded ' + Object.keys(module).join(','));
    } catch (e) {
      return new Response(`${e.name}: ${e.message}\n${e.stack || ''}`, { status: 400 });
    }
  },
};
"#;

const OTHER_ROUTE: &str = "export const secret = 'other-route-secret';\nexport default { fetch() { return new Response(secret); } };\n";

/// A project `app/` (the worker and what it may import) beside another
/// route's project `other/`, with the links and special files a worker
/// could try to reach through.
fn importer() -> (common::TempDir, std::path::PathBuf) {
    let (dir, config) = worker_dir(
        "workers-sandbox-import",
        &[
            ("app/index.js", IMPORTER),
            (
                "app/lib/ok.js",
                "export const ok = 1;\nexport const also = 2;\n",
            ),
            ("app/.dev.vars", "TOKEN=leakysecret123\n"),
            ("app/notes.txt", "leakynote456\n"),
            (
                "app/bad.js",
                // QuickJS: "exported variable 'leakyname1' does not exist".
                "export const x = 'leakyvalue2';\nexport { leakyname1 };\n",
            ),
            ("other/index.js", OTHER_ROUTE),
        ],
        "/other = worker:other/index.js threads=1\n/ = worker:app/index.js threads=1\n",
    );
    let app = dir.path().join("app");
    std::os::unix::fs::symlink("../other/index.js", app.join("escape.js")).expect("symlink");
    std::os::unix::fs::symlink("/dev/zero", app.join("zero.js")).expect("symlink");
    std::os::unix::fs::symlink(".dev.vars", app.join("vars.js")).expect("symlink");
    mkfifo(&app.join("fifo.js"));
    // Over the 10 MiB cap: a comment of 11 MiB.
    let mut big = b"// ".to_vec();
    big.resize(11 << 20, b'a');
    std::fs::write(app.join("big.js"), big).expect("write big.js");
    (dir, config)
}

/// `GET path` answered within `limit`, or `None`.
fn get_within(addr: SocketAddr, path: &str, limit: Duration) -> Option<common::Response> {
    let mut client = Client::connect(addr);
    client
        .stream()
        .set_read_timeout(Some(limit))
        .expect("timeout");
    client.send_raw(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    client.read_response(false)
}

fn import(server: &common::Server, specifier: &str) -> common::Response {
    let path = format!("/?m={}", specifier.replace('/', "%2F"));
    get_within(server.addr, &path, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("import('{specifier}') was not answered within 10 s"))
}

fn assert_refused(response: &common::Response, specifier: &str, why: &str) {
    let text = response.text();
    assert_eq!(response.status, 400, "import('{specifier}'): {text}");
    assert!(text.contains(why), "import('{specifier}'): {text}");
    for secret in [
        "other-route-secret",
        "leakysecret123",
        "leakynote456",
        "leakyname1",
        "leakyvalue2",
    ] {
        assert!(
            !text.contains(secret),
            "import('{specifier}') shows file content: {text}"
        );
    }
}

#[test]
fn imports_stay_inside_the_project_and_errors_show_no_file_content() {
    let (dir, config) = importer();
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .start();
    assert_eq!(import(&server, "./lib/ok.js").text(), "loaded also,ok");
    assert_eq!(
        import(&server, "./lib/../lib/ok.js").text(),
        "loaded also,ok"
    );

    let other = dir.path().join("other/index.js");
    assert_refused(&import(&server, "../other/index.js"), "../other", "outside");
    assert_refused(
        &import(&server, &other.to_string_lossy()),
        "absolute",
        "absolute",
    );
    assert_refused(&import(&server, "/etc/passwd"), "/etc/passwd", "absolute");
    assert_refused(&import(&server, "./escape.js"), "./escape.js", "outside");
    assert_refused(&import(&server, "./zero.js"), "./zero.js", "outside");
    assert_refused(&import(&server, "lodash"), "lodash", "no such package");
    // Files of the project that are not modules: the secrets above all.
    assert_refused(&import(&server, "./.dev.vars"), "./.dev.vars", ".js");
    assert_refused(&import(&server, "./vars.js"), "./vars.js", ".js");
    assert_refused(&import(&server, "./notes.txt"), "./notes.txt", ".js");
    assert_refused(&import(&server, "./missing.js"), "./missing.js", "no such");
    // A syntax error names the module and the place, not the source text
    // (the log has QuickJS's own message).
    assert_refused(&import(&server, "./bad.js"), "./bad.js", "SyntaxError");
    assert!(import(&server, "./bad.js").text().contains("bad.js"));
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("leakyname1"))
        .expect("the server's log has the syntax error in full");
    // A FIFO would block the thread for good, a big file would use memory.
    assert_refused(&import(&server, "./fifo.js"), "./fifo.js", "FIFO");
    assert_refused(&import(&server, "./big.js"), "./big.js", "larger than");
    // The thread still serves, and the other route is untouched.
    assert_eq!(server.get("/fine", &[]).text(), "fine");
    assert_eq!(server.get("/other", &[]).text(), "other-route-secret");
}

#[test]
fn dev_zero_cannot_grow_memory_under_a_memory_rlimit() {
    let (_dir, config) = importer();
    // 1.5 GiB of address space: enough to run the server, far too little
    // for reading /dev/zero into memory. (Unlimited, the old loader grew
    // past 2 GB in a 128 MB worker.)
    let mut server = ServerBuilder::new(&config)
        .shell_prefix("ulimit -v 1572864")
        .env("SERVER_THREAD_COUNT", "2")
        .env("MALLOC_ARENA_MAX", "2")
        .start();
    let pid = server.worker_pid();
    assert_refused(&import(&server, "/dev/zero"), "/dev/zero", "absolute");
    assert_refused(&import(&server, "./zero.js"), "./zero.js", "outside");
    assert_eq!(import(&server, "./lib/ok.js").text(), "loaded also,ok");
    assert!(server.is_running());
    assert_eq!(
        server.worker_pid(),
        pid,
        "the server process was not replaced"
    );
}

const STORMS: &str = r#"
const busy = (ms) => { const end = Date.now() + ms; while (Date.now() < end) {} };
export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname;
    if (path === '/micro') {
      const f = () => { queueMicrotask(f); queueMicrotask(f); };
      f();
      return new Response('storm started');
    }
    if (path === '/micro-before') {
      const f = () => { queueMicrotask(f); queueMicrotask(f); };
      f();
      await new Promise(() => {});
    }
    if (path === '/interval') {
      setInterval(() => busy(80), 1);
      return new Response('interval started');
    }
    if (path === '/interval-wait') {
      setInterval(() => busy(80), 1);
      ctx.waitUntil(new Promise(() => {}));
      return new Response('interval started, waiting');
    }
    return new Response('fine');
  },
};
"#;

fn storms() -> (common::TempDir, common::Server) {
    let (dir, config) = worker_dir(
        "workers-sandbox-storms",
        &[("index.js", STORMS)],
        "/ = worker:index.js threads=1 cpu_ms=200\n",
    );
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .start();
    (dir, server)
}

/// `path` answers, and then a normal request on the same (only) JS thread
/// is answered `fine` within 10 s, three times over.
fn then_fine(server: &common::Server, path: &str) -> common::Response {
    let first = get_within(server.addr, path, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{path} was not answered within 10 s"));
    for _ in 0..3 {
        let next = get_within(server.addr, "/fine", Duration::from_secs(10));
        assert_eq!(
            next.map(|r| r.text()).as_deref(),
            Some("fine"),
            "after {path}, the thread does not serve"
        );
    }
    first
}

#[test]
fn a_microtask_storm_does_not_wedge_its_thread() {
    let (_dir, server) = storms();
    // Answered before the storm runs away: the storm is its leftover work.
    let first = then_fine(&server, "/micro");
    assert!(
        first.status == 200 || first.status == 503,
        "{}",
        first.status
    );
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("exceeded CPU time limit (200 ms)")
        })
        .expect("the limit is logged");
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("JS runtime was reset")
        })
        .expect("the reset is logged");
    // Still pending when the storm runs away: the request is answered 503.
    assert_eq!(then_fine(&server, "/micro-before").status, 503);
}

#[test]
fn a_finished_requests_timers_are_cancelled_and_a_timer_storm_is_stopped() {
    let (_dir, server) = storms();
    assert_eq!(then_fine(&server, "/interval").text(), "interval started");
    // Alive through waitUntil, the interval is charged to its request
    // until the request's CPU budget is gone.
    assert_eq!(
        then_fine(&server, "/interval-wait").text(),
        "interval started, waiting"
    );
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("exceeded CPU time limit (200 ms)")
        })
        .expect("the storm is stopped by the CPU limit");
    assert_eq!(then_fine(&server, "/fine").text(), "fine");
}

#[test]
fn a_reset_runtime_loads_the_instances_code_even_after_a_broken_edit() {
    let (dir, server) = storms();
    assert_eq!(server.get("/fine", &[]).text(), "fine");
    // The edit does not build (the old instance keeps serving); the reset
    // that follows must not pick the broken file up.
    common::replace_file(&dir, "index.js", "export default { fetch( {\n");
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("SyntaxError"))
        .expect("the broken edit is logged");
    then_fine(&server, "/micro");
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("JS runtime was reset")
        })
        .expect("the reset is logged");
    assert_eq!(server.get("/fine", &[]).text(), "fine");
}

const LINGER: &str = r#"
let ticks = 0;
export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname;
    if (path === '/linger') {
      setInterval(() => { ticks += 1; }, 50);
      ctx.waitUntil(new Promise(() => {}));
      return new Response('lingering');
    }
    if (path === '/ticks') return new Response(String(ticks));
    if (path === '/pause') {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return new Response('paused');
    }
    return new Response('fine');
  },
};
"#;

#[test]
fn wait_until_work_is_cancelled_30_s_after_the_response() {
    let (_dir, config) = worker_dir(
        "workers-sandbox-linger",
        &[("index.js", LINGER), ("global.js", "setTimeout(() => {}, 10);\nexport default { fetch() { return new Response('x'); } };\n")],
        "/global = worker:global.js\n/ = worker:index.js threads=1\n",
    );
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .start();
    // As on workerd, no timer in global scope.
    assert!(server.get("/global", &[]).status >= 500);
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("Disallowed operation called within global scope")
        })
        .expect("the global-scope timer is refused");

    assert_eq!(server.get("/linger", &[]).text(), "lingering");
    // While its waitUntil promise is pending, the request's timers run.
    assert_eq!(server.get("/pause", &[]).text(), "paused");
    assert_ne!(server.get("/ticks", &[]).text(), "0");
    server
        .stderr
        .wait_for(Duration::from_secs(45), |l| {
            l.contains("waitUntil() work still running 30 s after the response was cancelled")
        })
        .expect("the lingering request is ended");
    let ticks = server.get("/ticks", &[]).text();
    assert_eq!(server.get("/pause", &[]).text(), "paused");
    assert_eq!(
        server.get("/ticks", &[]).text(),
        ticks,
        "its interval is cancelled"
    );
}

const SPIN: &str = r#"
export default {
  fetch(request) {
    const path = new URL(request.url).pathname;
    if (path.endsWith('/spin')) {
      console.log('spinning');
      const end = Date.now() + 800;
      while (Date.now() < end) {}
      // Some more work, so that the limit is looked at after the stop.
      let n = 0;
      for (let i = 0; i < 2e6; i++) n += i;
      return new Response(n > 0 ? 'spun' : '?');
    }
    if (path.endsWith('/hold')) {
      console.log('holding');
      const end = Date.now() + 3000;
      while (Date.now() < end) {}
      return new Response('held');
    }
    return new Response('fine');
  },
};
"#;

#[test]
fn the_cpu_limit_counts_cpu_time_not_time_spent_waiting_for_a_cpu() {
    let (_dir, config) = worker_dir(
        "workers-sandbox-cpu",
        &[("index.js", SPIN)],
        "/ = worker:index.js threads=1 cpu_ms=2000\n",
    );
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .start();
    let pid = server.worker_pid().expect("the server's worker process");
    // The worker spins for at most 800 ms of wall-clock time (so at most
    // 800 ms of CPU time, within its 2000 ms); meanwhile its process gets
    // no CPU at all for 2.5 s, as on a machine too busy to run it.
    let spinning = request_in_background(server.addr, "/spin", &[]);
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("spinning"))
        .expect("the request runs");
    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} {pid}");
    };
    signal("STOP");
    std::thread::sleep(Duration::from_millis(2500));
    signal("CONT");
    let (response, took) = spinning.join().expect("client");
    assert!(took >= Duration::from_millis(2000), "{took:?}");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "spun");
}

#[test]
fn a_full_js_thread_queue_answers_503_at_once() {
    let (_dir, config) = worker_dir(
        "workers-sandbox-queue",
        &[("index.js", SPIN)],
        "/ = worker:index.js threads=1 queue=2 cpu_ms=10000\n",
    );
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .start();
    // The only JS thread is busy for 3 s: two requests wait in its queue,
    // the others are refused at once.
    let holding = request_in_background(server.addr, "/hold", &[]);
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("holding"))
        .expect("the thread is busy");
    let addr = server.addr;
    let requests: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                let response = get_within(addr, "/fine", Duration::from_secs(20));
                (response, Instant::now())
            })
        })
        .collect();
    let (held, _) = holding.join().expect("client");
    let held_at = Instant::now();
    assert_eq!(held.text(), "held");
    let mut served = 0;
    for request in requests {
        let (response, at) = request.join().expect("client");
        let response = response.expect("answered");
        if response.status == 503 {
            assert!(response.text().contains("queue"), "{}", response.text());
            assert!(at < held_at, "refused at once, not after the busy request");
        } else {
            assert_eq!(response.text(), "fine");
            served += 1;
        }
    }
    assert_eq!(served, 2, "the queue holds two requests");
}

const SCHEDULED: &str = r#"
let ran = 0;
export default {
  fetch(request) {
    const path = new URL(request.url).pathname;
    if (path.endsWith('/ran')) return new Response(String(ran));
    return new Response('fetch ' + path, { status: 404 });
  },
  scheduled(event) {
    ran += 1;
  },
};
"#;

#[test]
fn scheduled_path_runs_scheduled_only_on_a_route_that_opts_in() {
    let (_dir, config) = worker_dir(
        "workers-sandbox-scheduled",
        &[("index.js", SCHEDULED)],
        "/test = worker:index.js threads=1 test_scheduled=1\n/ = worker:index.js threads=1\n",
    );
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .start();
    let plain = server.get("/__scheduled?cron=*+*+*+*+*", &[]);
    assert_eq!(plain.status, 404);
    assert_eq!(plain.text(), "fetch /__scheduled");
    let nested = server.get("/x/__scheduled", &[]);
    assert_eq!(nested.status, 404);
    assert_eq!(server.get("/ran", &[]).text(), "0");

    let opted = server.get("/test/__scheduled?cron=*+*+*+*+*", &[]);
    assert_eq!(opted.status, 200);
    assert_eq!(opted.text(), "ok");
    assert_eq!(server.get("/test/ran", &[]).text(), "1");
}
