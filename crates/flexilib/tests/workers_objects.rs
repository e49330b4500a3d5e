//! Durable Objects: `[[durable_objects.bindings]]` classes of the main
//! module (TypeScript, `extends DurableObject` from `cloudflare:workers`),
//! one instance per id whose calls never run at once, RPC methods and
//! `fetch` through stubs, `ctx.storage` persisting across a restart.

mod common;

use std::collections::HashSet;

use common::{request_in_background, worker_dir, ServerBuilder};

const WORKER: &str = r#"import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  async increment(by: number): Promise<number> {
    const n = ((await this.ctx.storage.get("n")) ?? 0) + by;
    // An await between the read and the write: only one call at a time
    // keeps the count exact.
    await new Promise((r) => setTimeout(r, 1));
    await this.ctx.storage.put("n", n);
    return n;
  }
  async fail(): Promise<never> {
    throw new RangeError("no such thing");
  }
  async fetch(request: Request): Promise<Response> {
    const list = await this.ctx.storage.list({ prefix: "n" });
    return Response.json({ path: new URL(request.url).pathname, entries: [...list], same: this.ctx.id.equals(this.env.COUNTER.idFromName("a")) });
  }
}

export default {
  async fetch(request: Request, env: { COUNTER: DurableObjectNamespace }): Promise<Response> {
    const url = new URL(request.url);
    const name = url.searchParams.get("name") ?? "a";
    const stub = env.COUNTER.get(env.COUNTER.idFromName(name));
    switch (url.pathname) {
      case "/inc": return new Response(String(await stub.increment(1)));
      case "/fail":
        try { await stub.fail(); return new Response("no error"); }
        catch (e) { return new Response(`${e.name}: ${e.message}`); }
      case "/bad-id":
        try { env.COUNTER.idFromString("nope"); return new Response("accepted"); }
        catch (e) { return new Response(`${e.name}: ${e.message}`); }
      case "/ids": {
        const a = env.COUNTER.idFromName("a");
        const unique = env.COUNTER.newUniqueId();
        return Response.json([a.toString() === env.COUNTER.idFromName("a").toString(), a.name, unique.toString().length, env.COUNTER.idFromString(unique.toString()).equals(unique)]);
      }
      default: return stub.fetch(request);
    }
  },
};
"#;

const WRANGLER: &str = "name = \"objects\"\nmain = \"index.ts\"\n\n[[durable_objects.bindings]]\nname = \"COUNTER\"\nclass_name = \"Counter\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Counter\"]\n";

#[test]
fn a_counter_object_stays_exact_under_concurrent_calls_and_persists() {
    let (_dir, config) = worker_dir(
        "workers-objects",
        &[("app/index.ts", WORKER), ("app/wrangler.toml", WRANGLER)],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    // 16 clients at once, each incrementing once: every count is seen once.
    let handles: Vec<_> = (0..16)
        .map(|_| request_in_background(server.addr, "/inc", &[]))
        .collect();
    let counts: HashSet<String> = handles
        .into_iter()
        .map(|h| h.join().expect("client").0.text())
        .collect();
    let expected: HashSet<String> = (1..=16).map(|n| n.to_string()).collect();
    assert_eq!(counts, expected);
    // Another name is another object.
    assert_eq!(server.get("/inc?name=b", &[]).text(), "1");
    // `fetch` through the stub reaches the object's own fetch().
    assert_eq!(
        server.get("/look", &[]).text(),
        r#"{"path":"/look","entries":[["n",16]],"same":true}"#
    );
    // RPC errors keep their class and message; ids behave.
    assert_eq!(server.get("/fail", &[]).text(), "RangeError: no such thing");
    assert_eq!(
        server.get("/bad-id", &[]).text(),
        "TypeError: Invalid Durable Object ID: must be 64 hex digits"
    );
    assert_eq!(server.get("/ids", &[]).text(), r#"[true,"a",64,true]"#);
    // The storage survives a restart.
    let (status, _, _) = server.terminate();
    assert!(status.success());
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/inc", &[]).text(), "17");
    // No warning: both keys are read.
    assert!(
        !server
            .stderr
            .snapshot()
            .iter()
            .any(|l| l.contains("not emulated")),
        "{:?}",
        server.stderr.snapshot()
    );
}
