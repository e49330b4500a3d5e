//! Instance counts on the admin listener's `/metrics`, scraped and parsed
//! by Python's `prometheus-client` (see `tests/admin.rs`): a Lambda
//! function's instances by state (`flexilib_lambda_instances`), and what the
//! Workers and WebAssembly runtime libraries report for their route's
//! instance through the optional `flexilib_instance_gauges` export
//! (`flexilib_library_…`), while requests run on every one of them at once
//! and after they finished; a C library exporting it by hand (past the
//! host's first buffer, with names it must skip), and libraries without it
//! beside them.

mod common;
#[path = "common/lambda.rs"]
mod lambda;
#[path = "common/metrics.rs"]
mod metrics;
#[path = "common/upstream.rs"]
mod upstream;
#[allow(dead_code)]
#[path = "common/wasm.rs"]
mod wasm;
#[allow(dead_code)]
#[path = "common/zig.rs"]
mod zig;

use std::net::SocketAddr;
use std::time::Duration;

use common::{c_stream_example, compile_c_text, request_in_background, ServerBuilder, TempDir};
use metrics::{admin_address, scrape, scrape_until, Scraped};
use tungstenite::Message;

/// A worker with a Durable Object class, a path that waits on an outbound
/// fetch, and a WebSocket echo.
const WORKER: &str = r#"import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  async fetch(request) {
    return new Response("object " + new URL(request.url).searchParams.get("name"));
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.headers.get("upgrade") === "websocket") {
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      server.addEventListener("message", (event) => server.send(event.data));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (url.pathname.endsWith("/held")) {
      const answer = await fetch(url.searchParams.get("to"));
      return new Response("upstream said " + (await answer.text()).length);
    }
    if (url.pathname.endsWith("/object")) {
      const name = url.searchParams.get("name");
      return env.COUNTER.get(env.COUNTER.idFromName(name)).fetch(request);
    }
    return new Response("hi");
  },
};
"#;

const WRANGLER: &str = "name = \"gauged\"\nmain = \"index.js\"\n\n[[durable_objects.bindings]]\nname = \"COUNTER\"\nclass_name = \"Counter\"\n\n[[migrations]]\ntag = \"v1\"\nnew_classes = [\"Counter\"]\n";

fn start(config: &std::path::Path) -> (common::Server, SocketAddr) {
    let server = wasm::server(config)
        .env("ADMIN_ADDRESS", "127.0.0.1:0")
        .start();
    let admin = admin_address(&server);
    (server, admin)
}

/// `flexilib_lambda_instances` of `/fn` in `state`.
fn lambda_instances(scraped: &Scraped, state: &str) -> Option<f64> {
    scraped.value(
        "flexilib_lambda_instances",
        &[("route", "/fn"), ("function", "gauged"), ("state", state)],
    )
}

/// `flexilib_library_NAME` of `route`.
fn library(scraped: &Scraped, name: &str, route: &str) -> Option<f64> {
    scraped.value(&format!("flexilib_library_{name}"), &[("route", route)])
}

/// Every sample of the Lambda and runtime families, for failure messages.
fn shown(scraped: &Scraped) -> String {
    scraped
        .samples
        .iter()
        .filter(|s| {
            s["name"].as_str().is_some_and(|name| {
                name.starts_with("flexilib_lambda_") || name.starts_with("flexilib_library_")
            })
        })
        .map(|s| format!("{} {} {}\n", s["name"], s["labels"], s["value"]))
        .collect()
}

#[test]
fn lambda_worker_and_wasm_instances_are_counted_while_busy_and_after() {
    wasm::ensure_built();
    common::workers_library();
    let held = upstream::Upstream::start("held");
    let port = held.addr.port();
    let dir = TempDir::new("admin-instances");
    std::fs::create_dir_all(dir.path().join("app")).expect("create app/");
    dir.write("app/index.js", WORKER);
    dir.write("app/wrangler.toml", WRANGLER);
    c_stream_example(&dir);
    dir.write("greeting.txt", "hello\n");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/fn = lambda:{bootstrap} name=gauged concurrency=4 timeout=30\n\
             /js = worker:app/wrangler.toml threads=2\n\
             /w = wasm:{hello} max_instances=7 allow_outbound=127.0.0.1:{port}\n\
             /s = libstream.so greeting=greeting.txt\n",
            bootstrap = lambda::rust_bootstrap().display(),
            hello = wasm::guest("hello", &[]).display(),
        ),
    );
    let (server, admin) = start(&config);

    // Before any request: no Lambda instance yet, the worker's two
    // isolates and the component loaded (both built with the config).
    let before = scrape(admin);
    for family in [
        "flexilib_lambda_instances",
        "flexilib_lambda_queued_invocations",
        "flexilib_lambda_concurrency_limit",
        "flexilib_library_wasm_instances_running",
        "flexilib_library_worker_isolates",
    ] {
        assert_eq!(before.types[family], "gauge", "{family}");
    }
    for state in ["starting", "busy", "idle", "stopping"] {
        assert_eq!(lambda_instances(&before, state), Some(0.0), "{state}");
    }
    assert_eq!(
        before.value(
            "flexilib_lambda_concurrency_limit",
            &[("route", "/fn"), ("function", "gauged")]
        ),
        Some(4.0)
    );
    assert_eq!(library(&before, "worker_isolates", "/js"), Some(2.0));
    assert_eq!(
        library(&before, "worker_requests_in_flight", "/js"),
        Some(0.0)
    );
    assert_eq!(library(&before, "worker_durable_objects", "/js"), Some(0.0));
    assert_eq!(library(&before, "wasm_instances_running", "/w"), Some(0.0));
    assert_eq!(library(&before, "wasm_instances_max", "/w"), Some(7.0));
    assert_eq!(library(&before, "wasm_components", "/w"), Some(1.0));
    // The C stream example builds an instance but exports no gauges: it
    // serves, and nothing is reported for it.
    assert_eq!(server.get("/s", &[]).text(), "hello\n");
    let without = scrape(admin);
    assert!(
        !without.samples.iter().any(|s| s["labels"]["route"] == "/s"
            && s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("flexilib_library_"))),
        "{}",
        shown(&without)
    );

    // Two Durable Objects and an open WebSocket.
    for name in ["a", "b"] {
        let response = server.get(&format!("/js/object?name={name}"), &[]);
        assert_eq!(response.text(), format!("object {name}"));
    }
    let (mut socket, _) =
        tungstenite::connect(format!("ws://{}/js/ws", server.addr)).expect("WebSocket handshake");
    socket.send(Message::text("ping")).expect("send");
    assert_eq!(
        socket.read().expect("echo"),
        Message::text("ping"),
        "the worker echoes"
    );

    // Everything busy at once: three slow Lambda invocations, two guests
    // and two worker requests waiting on the held upstream.
    let stream = format!("127.0.0.1:{port}/stream");
    let mut requests = Vec::new();
    for _ in 0..3 {
        requests.push(request_in_background(server.addr, "/fn/slow?ms=4000", &[]));
    }
    for _ in 0..2 {
        requests.push(request_in_background(
            server.addr,
            &format!("/w/fetch?{stream}"),
            &[],
        ));
        requests.push(request_in_background(
            server.addr,
            &format!("/js/held?to=http://{stream}"),
            &[],
        ));
    }
    let busy = scrape_until(admin, Duration::from_secs(15), |s| {
        lambda_instances(s, "busy") == Some(3.0)
            && library(s, "wasm_instances_running", "/w") == Some(2.0)
            && library(s, "worker_requests_in_flight", "/js") == Some(3.0)
    })
    .unwrap_or_else(|last| panic!("not all busy at once:\n{}", shown(&last)));
    assert_eq!(lambda_instances(&busy, "idle"), Some(0.0));
    assert_eq!(library(&busy, "worker_websockets_open", "/js"), Some(1.0));
    assert_eq!(library(&busy, "worker_durable_objects", "/js"), Some(2.0));
    assert_eq!(library(&busy, "worker_isolates", "/js"), Some(2.0));
    assert_eq!(library(&busy, "worker_requests_queued", "/js"), Some(0.0));
    assert_eq!(held.count(), 4, "both guests and both worker requests wait");

    held.release();
    for request in requests {
        let (response, _) = request.join().expect("request thread");
        assert_eq!(response.status, 200, "{}", response.text());
    }
    // After: the Lambda instances idle (warm), no guest running, only the
    // WebSocket still in flight on the worker.
    let after = scrape_until(admin, Duration::from_secs(10), |s| {
        lambda_instances(s, "idle") == Some(3.0)
            && library(s, "wasm_instances_running", "/w") == Some(0.0)
            && library(s, "worker_requests_in_flight", "/js") == Some(1.0)
    })
    .unwrap_or_else(|last| panic!("not back to rest:\n{}", shown(&last)));
    for state in ["starting", "busy", "stopping"] {
        assert_eq!(lambda_instances(&after, state), Some(0.0), "{state}");
    }
    assert_eq!(
        after.value(
            "flexilib_lambda_queued_invocations",
            &[("route", "/fn"), ("function", "gauged")]
        ),
        Some(0.0)
    );
    assert_eq!(library(&after, "worker_websockets_open", "/js"), Some(1.0));

    // The WebSocket closes: nothing left in flight on the worker.
    socket.close(None).expect("close");
    while socket.read().is_ok() {}
    scrape_until(admin, Duration::from_secs(10), |s| {
        library(s, "worker_websockets_open", "/js") == Some(0.0)
            && library(s, "worker_requests_in_flight", "/js") == Some(0.0)
    })
    .unwrap_or_else(|last| panic!("the WebSocket is still counted:\n{}", shown(&last)));
}

/// A C library exporting `flexilib_instance_gauges` by hand: 40 gauges
/// (more than the host's first buffer of 32), a name given twice, and names
/// the host must skip.
const GAUGES_C: &str = r#"#include "flexilib.h"
#include <stdio.h>
#include <string.h>

static int instance;
static struct flexilib_response_v2 ok = {{"ok", 2, 0, 0, 0, 0, 0}, 0};
static char names[40][24];
static volatile size_t requests;

int flexilib_init(size_t v) { return v < 2; }
size_t flexilib_abi_version(void) { return 2; }
void *flexilib_instance_new(const struct flexilib_instance_config *c) {
    (void)c;
    for (int i = 0; i < 40; i++)
        snprintf(names[i], sizeof names[i], "c_gauge_%d", i);
    return &instance;
}
void flexilib_instance_free(void *i) { (void)i; }
struct flexilib_response *handle_request(struct flexilib_request *r) {
    (void)r;
    __atomic_fetch_add(&requests, 1, __ATOMIC_RELAXED);
    return &ok.base;
}

static void put(struct flexilib_gauge *out, size_t capacity, size_t *n,
                const char *name, const char *help, double value) {
    if (*n < capacity) {
        out[*n].name = name;
        out[*n].name_len = strlen(name);
        out[*n].help = help;
        out[*n].help_len = strlen(help);
        out[*n].value = value;
    }
    (*n)++;
}

size_t flexilib_instance_gauges(void *i, struct flexilib_gauge *out, size_t capacity) {
    size_t n = 0;
    if (i != &instance)
        return 0;
    put(out, capacity, &n, "c_requests", "Requests the C library saw\nsecond line",
        (double)__atomic_load_n(&requests, __ATOMIC_RELAXED));
    put(out, capacity, &n, "c_requests", "twice", -1);
    put(out, capacity, &n, "Not-A-Name", "skipped", 1);
    put(out, capacity, &n, "c_seen_total", "skipped", 1);
    for (int k = 0; k < 40; k++)
        put(out, capacity, &n, names[k], "", k);
    return n;
}
"#;

#[test]
fn a_c_library_reports_gauges_past_the_first_buffer_and_bad_names_are_skipped() {
    let dir = TempDir::new("admin-c-gauges");
    compile_c_text(&dir, "libgauges.so", GAUGES_C);
    let config = dir.write("proxy.ini", "/g = libgauges.so\n");
    let server = ServerBuilder::new(&config)
        .env("ADMIN_ADDRESS", "127.0.0.1:0")
        .start();
    let admin = admin_address(&server);

    // Built on the first request: nothing to ask before.
    let before = scrape(admin);
    assert!(before.named("flexilib_library_c_requests").is_empty());

    for _ in 0..3 {
        assert_eq!(server.get("/g", &[]).text(), "ok");
    }
    let scraped = scrape(admin);
    assert_eq!(scraped.types["flexilib_library_c_requests"], "gauge");
    assert_eq!(
        scraped.named("flexilib_library_c_requests").len(),
        1,
        "a name given twice is kept once"
    );
    assert_eq!(
        scraped.value("flexilib_library_c_requests", &[("route", "/g")]),
        Some(3.0),
        "the first of the two"
    );
    for k in [0, 31, 32, 39] {
        assert_eq!(
            scraped.value(&format!("flexilib_library_c_gauge_{k}"), &[("route", "/g")]),
            Some(f64::from(k)),
            "gauge {k} of 40"
        );
    }
    let names: Vec<&str> = scraped
        .samples
        .iter()
        .filter_map(|s| s["name"].as_str())
        .filter(|name| name.starts_with("flexilib_library_"))
        .collect();
    assert_eq!(names.len(), 41, "{names:?}");
    assert!(
        !names
            .iter()
            .any(|name| name.contains("seen") || name.contains("Not")),
        "{names:?}"
    );
}
