//! Cloudflare Workers emulation, hot reload: editing the script, a module
//! it imports, `wrangler.toml` or `.dev.vars` gives a new instance within
//! a second with zero failed requests under load; a broken edit keeps the
//! old code serving and says why; KV data survives.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{replace_file, worker_dir, Client, ServerBuilder};

const WRANGLER: &str = r#"
name = "reload"
main = "index.js"
[vars]
COLOR = "red"
[[kv_namespaces]]
binding = "KV"
id = "reload"
"#;

fn index(version: &str) -> String {
    format!(
        r#"import {{ suffix }} from './lib/suffix.js';
export default {{
  async fetch(request, env) {{
    const url = new URL(request.url);
    if (url.pathname === '/put') {{ await env.KV.put('k', 'kept'); return new Response('ok'); }}
    if (url.pathname === '/get') return new Response(await env.KV.get('k'));
    return new Response(`{version} ${{env.COLOR}} ${{env.TOKEN}} ${{suffix}}`);
  }},
}};
"#
    )
}

/// Polls `/` until its body is `expected`; returns how long it took.
fn wait_for_body(server: &common::Server, expected: &str) -> Duration {
    let started = Instant::now();
    loop {
        let body = server.get("/", &[]).text();
        if body == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still `{body}`, expected `{expected}`"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn edits_reload_under_load_with_zero_failures_and_broken_ones_keep_the_old_code() {
    let (dir, config) = worker_dir(
        "workers-reload",
        &[
            ("app/wrangler.toml", WRANGLER),
            ("app/index.js", &index("v1")),
            ("app/lib/suffix.js", "export const suffix = 'one';\n"),
            ("app/.dev.vars", "TOKEN=a\n"),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).text(), "v1 red a one");
    assert_eq!(server.get("/put", &[]).text(), "ok");

    // Four clients keep the route busy for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served, failures, addr) =
                (stop.clone(), served.clone(), failures.clone(), server.addr);
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    let response = client.request("GET", "/", &[], b"");
                    if response.status != 200 || !response.text().starts_with('v') {
                        let mut failures = failures.lock().unwrap_or_else(|e| e.into_inner());
                        failures.push(format!("{} {}", response.status, response.text()));
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    let app = |name: &str| format!("app/{name}");
    let mut slowest = Duration::ZERO;
    replace_file(&dir, &app("index.js"), &index("v2"));
    slowest = slowest.max(wait_for_body(&server, "v2 red a one"));
    replace_file(
        &dir,
        &app("lib/suffix.js"),
        "export const suffix = 'two';\n",
    );
    slowest = slowest.max(wait_for_body(&server, "v2 red a two"));
    replace_file(
        &dir,
        &app("wrangler.toml"),
        &WRANGLER.replace("red", "blue"),
    );
    slowest = slowest.max(wait_for_body(&server, "v2 blue a two"));
    replace_file(&dir, &app(".dev.vars"), "TOKEN=b\n");
    slowest = slowest.max(wait_for_body(&server, "v2 blue b two"));

    // A broken edit: logged, and the current code keeps serving.
    replace_file(&dir, &app("index.js"), "export default { fetch( {\n");
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("SyntaxError"))
        .expect("the broken edit is logged");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.get("/", &[]).text(), "v2 blue b two");
    // Fixed again.
    replace_file(&dir, &app("index.js"), &index("v3"));
    slowest = slowest.max(wait_for_body(&server, "v3 blue b two"));

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client");
    }
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(served.load(Ordering::Relaxed) > 50, "the load ran");
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "a change took {slowest:?} to serve"
    );
    // KV data survived five new instances.
    assert_eq!(server.get("/get", &[]).text(), "kept");
}
