//! Durable Objects: `[[durable_objects.bindings]]` classes of the main
//! module (TypeScript, `extends DurableObject` from `cloudflare:workers`),
//! one instance per id whose calls never run at once, RPC methods and
//! `fetch` through stubs, `ctx.storage` persisting across a restart.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

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

const SQL_WRANGLER: &str = "name = \"sql\"\nmain = \"main.js\"\n\n[[durable_objects.bindings]]\nname = \"DB\"\nclass_name = \"Db\"\n\n[[durable_objects.bindings]]\nname = \"KV\"\nclass_name = \"Kv\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Db\"]\nnew_classes = [\"Kv\"]\n";

/// Polls `path` until it answers `want` (alarms fire on their own time).
fn wait_for_text(server: &common::Server, path: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let text = server.get(path, &[]).text();
        if text == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} answered {text}, not {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ctx.storage.sql` of a SQLite-backed class (`new_sqlite_classes`):
/// cursors, errors and `transactionSync` as workerd answers them
/// (tests/workers/sql/expected.txt, recorded from workerd 2026-12-01 with
/// `enableSql` and on-disk storage), `blockConcurrencyWhile` holding calls
/// back until the constructor's setup has run, a key-value class refused
/// the SQL API; alarms fired on time and retried once after a failure, as
/// workerd does; the database and a pending alarm survive a restart.
#[test]
fn sqlite_objects_query_and_alarms_fire_across_a_restart() {
    let dir = common::workspace().join("crates/flexilib/tests/workers/sql");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("sql fixture");
    let (_dir, config) = worker_dir(
        "workers-objects-sql",
        &[
            ("app/main.js", &read("main.js")),
            ("app/wrangler.toml", SQL_WRANGLER),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).text(), read("expected.txt"));
    assert!(server
        .get("/kv", &[])
        .text()
        .starts_with("Error: SQL is not enabled for this Durable Object class."));
    assert_eq!(server.get("/count", &[]).text(), "4");
    // setAlarm() without an alarm() handler, or without a time: workerd's
    // errors.
    assert_eq!(
        server.get("/no-alarm", &[]).text(),
        "TypeError: Your Durable Object class must have an alarm() handler in order to call setAlarm()\nTypeError: Failed to execute 'setAlarm' on 'DurableObjectStorage': parameter 1 is not of type 'date'."
    );
    // Stored values are structured clones (Date, Map, Set, bytes, BigInt,
    // a cycle; a class instance as its properties), as workerd keeps them.
    assert_eq!(
        server.get("/values?name=values", &[]).text(),
        "5 | true | 7+8 | bigint | true | true | true | stored"
    );
    // deleteAll() drops a SQLite-backed object's tables and keeps its
    // alarm, as workerd does.
    assert_eq!(
        server.get("/wipe?name=wipe", &[]).text(),
        "[] | undefined | number"
    );
    assert_eq!(server.get("/arm?ms=200", &[]).text(), "number");
    // The first run throws; the retry (1 s later) succeeds; then no alarm.
    wait_for_text(
        &server,
        "/fired",
        r#"[2,[1,true,"number"],null]"#,
        Duration::from_secs(10),
    );
    // An alarm set for after the restart fires in the next process.
    assert_eq!(server.get("/arm?ms=1500&name=b", &[]).text(), "number");
    let (status, _, _) = server.terminate();
    assert!(status.success());
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/count", &[]).text(), "4");
    wait_for_text(
        &server,
        "/fired?name=b",
        r#"[2,[1,true,"number"],null]"#,
        Duration::from_secs(10),
    );
    // The SQL file is the object's own, under the state directory.
    let state = _dir.path().join("app/.wrangler/state/do/Db");
    let files = std::fs::read_dir(&state)
        .expect("the class's SQL directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sqlite"))
        .count();
    assert_eq!(
        files, 4,
        "one database per object (a, b, values and the wiped one)"
    );
}

/// An `alarm()` handler runs under the CPU limit: one that never ends is
/// stopped and the object goes on answering.
#[test]
fn an_alarm_past_the_cpu_limit_is_stopped() {
    let worker = "import { DurableObject } from 'cloudflare:workers';\nexport class Spin extends DurableObject {\n  async arm() { await this.ctx.storage.setAlarm(Date.now()); return 'armed'; }\n  async alarm() { await this.ctx.storage.put('ran', true); for (;;) {} }\n  async ran() { return String(await this.ctx.storage.get('ran')); }\n}\nexport default { async fetch(request, env) {\n  const stub = env.SPIN.getByName('x');\n  return new Response(new URL(request.url).pathname === '/arm' ? await stub.arm() : await stub.ran());\n} };\n";
    let (_dir, config) = worker_dir(
        "workers-objects-alarm-cpu",
        &[
            ("app/main.js", worker),
            (
                "app/wrangler.toml",
                "name = \"spin\"\nmain = \"main.js\"\n\n[[durable_objects.bindings]]\nname = \"SPIN\"\nclass_name = \"Spin\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Spin\"]\n",
            ),
        ],
        "/ = worker:app/wrangler.toml cpu_ms=100\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/arm", &[]).text(), "armed");
    wait_for_text(&server, "/ran", "true", Duration::from_secs(10));
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l
            .contains("exceeded CPU time limit"))
        .is_some());
    assert_eq!(server.get("/ran", &[]).text(), "true");
}

/// An alarm pending while the route is rebuilt (an edit) fires once, in
/// the new instance: the retired one's schedule stops.
#[test]
fn an_alarm_fires_once_across_a_reload() {
    let worker = |version: &str| {
        format!(
            "import {{ DurableObject }} from 'cloudflare:workers';\nexport class Once extends DurableObject {{\n  async arm() {{ await this.ctx.storage.setAlarm(Date.now() + 1500); return 'armed'; }}\n  async alarm() {{ const runs = (await this.ctx.storage.get('runs')) ?? []; runs.push('{version}'); await this.ctx.storage.put('runs', runs); }}\n  async runs() {{ return JSON.stringify((await this.ctx.storage.get('runs')) ?? []); }}\n}}\nexport default {{ async fetch(request, env) {{\n  const stub = env.ONCE.getByName('x');\n  return new Response(new URL(request.url).pathname === '/arm' ? await stub.arm() : await stub.runs());\n}} }};\n"
        )
    };
    let (dir, config) = worker_dir(
        "workers-objects-alarm-reload",
        &[
            ("app/main.js", &worker("v1")),
            (
                "app/wrangler.toml",
                "name = \"once\"\nmain = \"main.js\"\n\n[[durable_objects.bindings]]\nname = \"ONCE\"\nclass_name = \"Once\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Once\"]\n",
            ),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/arm", &[]).text(), "armed");
    common::replace_file(&dir, "app/main.js", &worker("v2"));
    wait_for_text(&server, "/runs", r#"["v2"]"#, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.get("/runs", &[]).text(), r#"["v2"]"#);
}
