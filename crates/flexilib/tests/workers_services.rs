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
