//! Service bindings: a worker calls another worker of the same server by
//! its wrangler `name` (`[[services]]`), in process, whatever route the
//! other is mounted on; the callee's answer (whole or streamed) comes back
//! as a `Response`; a rebuilt callee takes the calls over.

mod common;

use std::time::{Duration, Instant};

use common::{replace_file, worker_dir, ServerBuilder};

const FRONT: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/front/missing') {
      try { await env.NOBODY.fetch('http://x/'); return new Response('reached'); }
      catch (e) { return new Response(`${e.name}: ${e.message}`); }
    }
    if (url.pathname === '/front/stream') {
      const res = await env.BACKEND.fetch('http://backend.internal/stream');
      return new Response(`${res.status} ${await res.text()}`);
    }
    const res = await env.BACKEND.fetch('http://backend.internal/echo?q=1', {
      method: 'POST', body: 'hello', headers: { 'x-from': 'front' },
    });
    return new Response(`${res.status} ${res.headers.get('x-backend')} ${await res.text()}`);
  },
};
"#;

fn backend(version: &str) -> String {
    format!(
        r#"
export default {{
  async fetch(request) {{
    const url = new URL(request.url);
    if (url.pathname === '/stream') {{
      const {{ readable, writable }} = new TransformStream();
      const w = writable.getWriter();
      (async () => {{ for (const p of ['a', 'b', 'c']) await w.write(new TextEncoder().encode(p)); await w.close(); }})();
      return new Response(readable);
    }}
    const body = await request.text();
    return new Response(`{version} ${{request.method}} ${{url.pathname}}${{url.search}} ${{request.headers.get('x-from')}} ${{body}}`, {{
      status: 201, headers: {{ 'x-backend': '{version}' }},
    }});
  }},
}};
"#
    )
}

#[test]
fn a_worker_calls_another_by_its_name_in_process() {
    let (dir, config) = worker_dir(
        "workers-services",
        &[
            ("front/index.js", FRONT),
            (
                "front/wrangler.toml",
                "name = \"front\"\nmain = \"index.js\"\n\n[[services]]\nbinding = \"BACKEND\"\nservice = \"backend\"\n\n[[services]]\nbinding = \"NOBODY\"\nservice = \"nobody\"\n",
            ),
            ("back/index.js", &backend("v1")),
            ("back/wrangler.toml", "name = \"backend\"\nmain = \"index.js\"\n"),
        ],
        "/front = worker:front/wrangler.toml services=backend,nobody\n/internal = worker:back/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(
        server.get("/front/call", &[]).text(),
        "201 v1 v1 POST /echo?q=1 front hello"
    );
    // A streamed answer is gathered and handed back whole.
    assert_eq!(server.get("/front/stream", &[]).text(), "200 abc");
    // A name no route has: the caller's fetch rejects, saying so.
    assert_eq!(
        server.get("/front/missing", &[]).text(),
        "Error: service binding: no worker named \"nobody\" runs on this server (its wrangler `name`)"
    );
    // Many calls at once all come back.
    let handles: Vec<_> = (0..16)
        .map(|_| common::request_in_background(server.addr, "/front/call", &[]))
        .collect();
    for handle in handles {
        let (response, _) = handle.join().expect("client");
        assert_eq!(response.text(), "201 v1 v1 POST /echo?q=1 front hello");
    }
    // The callee is edited: its new instance takes the name over.
    replace_file(&dir, "back/index.js", &backend("v2"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = server.get("/front/call", &[]).text();
        if text == "201 v2 v2 POST /echo?q=1 front hello" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new callee never answered: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `env.X.method(…)` on a service binding: RPC to the callee's
/// `WorkerEntrypoint` default export or a named entrypoint
/// (`entrypoint = "Admin"`), values beyond JSON (Date, Map, Set, BigInt,
/// typed arrays, undefined, NaN) carried, errors rethrown as Cloudflare
/// rethrows them, and the two workers calling each other (front → back by
/// RPC → front by fetch). The expected text is what workerd answers for
/// the same three scripts (tests/workers/rpc/expected.txt, recorded with
/// workerd 2026-12-01 and a capnp config binding them alike).
#[test]
fn two_workers_call_each_other_by_fetch_and_rpc_as_workerd_does() {
    let dir = common::workspace().join("crates/flexilib/tests/workers/rpc");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("rpc fixture");
    let (_dir, config) = worker_dir(
        "workers-rpc",
        &[
            ("front/index.js", &read("front.js")),
            (
                "front/wrangler.toml",
                "name = \"front\"\nmain = \"index.js\"\n\n[[services]]\nbinding = \"BACK\"\nservice = \"back\"\n\n[[services]]\nbinding = \"ADMIN\"\nservice = \"back\"\nentrypoint = \"Admin\"\n\n[[services]]\nbinding = \"PLAIN\"\nservice = \"plain\"\n",
            ),
            ("back/index.js", &read("back.js")),
            (
                "back/wrangler.toml",
                "name = \"back\"\nmain = \"index.js\"\n\n[vars]\nROLE = \"root\"\n\n[[services]]\nbinding = \"FRONT\"\nservice = \"front\"\n",
            ),
            ("plain/index.js", &read("plain.js")),
            ("plain/wrangler.toml", "name = \"plain\"\nmain = \"index.js\"\n"),
        ],
        "/ = worker:front/wrangler.toml services=back,plain\n/back = worker:back/wrangler.toml services=front\n/plain = worker:plain/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).text(), read("expected.txt"));
    // No warning about the entrypoint: it is honoured.
    assert!(
        !server
            .stderr
            .snapshot()
            .iter()
            .any(|l| l.contains("entrypoint")),
        "{:?}",
        server.stderr.snapshot()
    );
}

/// An RPC method runs under the callee's CPU limit: one that never ends is
/// stopped, the caller's call rejects, and both workers go on serving.
#[test]
fn an_rpc_method_past_the_cpu_limit_is_stopped_and_the_caller_told() {
    let (_dir, config) = worker_dir(
        "workers-rpc-cpu",
        &[
            (
                "front/index.js",
                "export default { async fetch(request, env) {\n  if (new URL(request.url).pathname.endsWith('/spin')) {\n    try { await env.BACK.spin(); return new Response('returned'); }\n    catch (e) { return new Response(`${e.name}: ${e.message}`); }\n  }\n  return new Response(String(await env.BACK.add(1, 2)));\n} };\n",
            ),
            (
                "front/wrangler.toml",
                "name = \"front\"\nmain = \"index.js\"\n\n[[services]]\nbinding = \"BACK\"\nservice = \"back\"\n",
            ),
            (
                "back/index.js",
                "import { WorkerEntrypoint } from 'cloudflare:workers';\nexport default class extends WorkerEntrypoint {\n  async fetch() { return new Response('back'); }\n  spin() { for (;;) {} }\n  add(a, b) { return a + b; }\n}\n",
            ),
            ("back/wrangler.toml", "name = \"back\"\nmain = \"index.js\"\n"),
        ],
        "/front = worker:front/wrangler.toml services=back\n/back = worker:back/wrangler.toml cpu_ms=100 threads=1\n",
    );
    let server = ServerBuilder::new(&config).start();
    let started = Instant::now();
    let text = server.get("/front/spin", &[]).text();
    assert!(
        text.starts_with("Error: RPC call to \"spin\" failed: the callee answered 503"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.get("/front/add", &[]).text(), "3");
    assert_eq!(server.get("/back", &[]).text(), "back");
}
