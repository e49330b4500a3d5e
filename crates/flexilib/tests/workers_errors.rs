//! Cloudflare Workers emulation, errors and limits as production has
//! them: uncaught exceptions, rejected promises and non-Response results
//! answer a bare 500 (the stack goes to the log), a script that does not
//! parse makes its route 5xx while other routes serve, and the CPU and
//! memory limits stop a runaway request while the next one is served.

mod common;

use std::time::{Duration, Instant};

use common::{request_in_background, worker_dir, ServerBuilder};

const APP: &str = r#"export default {
  async fetch(request) {
    const path = new URL(request.url).pathname; // the full path: /x or /limits/x
    if (path.endsWith('/throw')) throw new Error('boom at line 4');
    if (path.endsWith('/reject')) return Promise.reject(new TypeError('rejected'));
    if (path.endsWith('/string')) return 'not a response';
    if (path.endsWith('/loop')) { for (;;) {} }
    if (path.endsWith('/later-loop')) { await new Promise((r) => setTimeout(r, 10)); for (;;) {} }
    if (path.endsWith('/hog')) { const keep = []; for (;;) keep.push(new Array(100000).fill(path)); }
    return new Response('fine');
  },
};
"#;

const BROKEN: &str =
    "export default {\n  fetch(request) {\n    return new Response('x'\n  },\n};\n";

fn start() -> (common::TempDir, common::Server) {
    let (dir, config) = worker_dir(
        "workers-errors",
        &[
            ("app.js", APP),
            ("broken.js", BROKEN),
            // A project of its own: modules come from its directory only.
            ("limits/app.js", APP),
            (
                "limits/wrangler.toml",
                "name = \"limits\"\nmain = \"app.js\"\n[limits]\ncpu_ms = 300\n",
            ),
        ],
        "/broken = worker:broken.js\n/limits = worker:limits/wrangler.toml threads=1 memory_mb=32\n/ = worker:app.js\n",
    );
    let server = ServerBuilder::new(&config).start();
    (dir, server)
}

#[test]
fn uncaught_errors_answer_a_bare_500_and_log_the_stack() {
    let (_dir, server) = start();
    for path in ["/throw", "/reject", "/string"] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, 500, "{path}");
        assert_eq!(response.text(), "Internal Server Error", "{path}");
        assert_eq!(response.header("content-type"), None, "{path}");
    }
    let line = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("boom at line 4"))
        .expect("the exception is logged");
    assert!(
        line.starts_with("[/] Uncaught Error: boom at line 4"),
        "{line}"
    );
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("app.js:4:"))
        .expect("the stack names the file and line");
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("did not resolve to 'Response'")
        })
        .expect("a non-Response result is logged as workerd says it");
    assert_eq!(server.get("/fine", &[]).text(), "fine");
}

#[test]
fn a_script_that_does_not_parse_fails_its_route_only() {
    let (_dir, server) = start();
    let broken = server.get("/broken", &[]);
    // The answer speaks of the worker, not of a handler library.
    assert_eq!(broken.status, 502);
    assert!(
        broken
            .text()
            .contains("the worker for this route did not start"),
        "{}",
        broken.text()
    );
    let line = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("SyntaxError"))
        .expect("the syntax error is logged");
    assert!(
        line.contains("the worker for route `/broken` did not start"),
        "the route is named: {line}"
    );
    assert!(
        !line.contains("libflexilib_workers.so"),
        "no runtime library path in the worker's error: {line}"
    );
    let stderr = server.stderr.snapshot().join("\n");
    assert!(
        stderr.contains("broken.js:4:3"),
        "file, line and column: {stderr}"
    );
    assert_eq!(server.get("/fine", &[]).text(), "fine");
    // Logged once, though the route was built at load and asked for since.
    assert_eq!(server.get("/broken", &[]).status, 502);
    let failures = server
        .stderr
        .snapshot()
        .iter()
        .filter(|l| l.contains("SyntaxError"))
        .count();
    assert_eq!(failures, 1, "{stderr}");
}

#[test]
fn unknown_wrangler_keys_warn_with_their_line_as_wrangler_does() {
    let (_dir, config) = worker_dir(
        "workers-keys",
        &[
            (
                "app/wrangler.toml",
                "name = \"keys\"\nmain = \"index.js\"\n\n[[kv_namespace]]\nbinding = \"KV\"\nid = \"k\"\n\n[[vectorize]]\nbinding = \"VECTORS\"\n",
            ),
            (
                "app/index.js",
                "export default { fetch(request, env) { return new Response(typeof env.KV); } };\n",
            ),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    // The misspelt binding is ignored, as wrangler ignores it…
    assert_eq!(server.get("/", &[]).text(), "undefined");
    // …but not silently.
    let misspelt = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("kv_namespace`"))
        .expect("the unknown key is warned about");
    assert!(
        misspelt.contains("wrangler.toml:4") && misspelt.contains("did you mean `kv_namespaces`?"),
        "{misspelt}"
    );
    let not_emulated = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("vectorize"))
        .expect("the binding that is not emulated is named");
    assert!(
        not_emulated.contains("wrangler.toml:8") && not_emulated.contains("not emulated"),
        "{not_emulated}"
    );
}

#[test]
fn the_cpu_limit_stops_an_infinite_loop_and_the_next_request_is_served() {
    let (_dir, server) = start();
    assert_eq!(server.get("/limits/fine", &[]).text(), "fine");
    for path in ["/limits/loop", "/limits/later-loop"] {
        // A request queued behind the loop on the same (only) JS thread.
        let looping = request_in_background(server.addr, path, &[]);
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        let next = server.get("/limits/fine", &[]);
        assert_eq!(next.text(), "fine");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let (response, took) = looping.join().expect("client");
        assert_eq!(response.status, 503, "{path}");
        assert!(took < Duration::from_secs(3), "{path} took {took:?}");
    }
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("exceeded CPU time limit (300 ms)")
        })
        .expect("the limit is logged");
}

#[test]
fn the_memory_limit_stops_a_runaway_allocation_and_the_next_request_is_served() {
    let (_dir, server) = start();
    let response = server.get("/limits/hog", &[]);
    assert_eq!(response.status, 503);
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("exceeded memory limit (32 MB)")
        })
        .expect("the limit is logged");
    for _ in 0..3 {
        assert_eq!(server.get("/limits/fine", &[]).text(), "fine");
    }
    // The memory was given back: it can run away (and be stopped) again.
    assert_eq!(server.get("/limits/hog", &[]).status, 503);
    assert_eq!(server.get("/limits/fine", &[]).text(), "fine");
}
