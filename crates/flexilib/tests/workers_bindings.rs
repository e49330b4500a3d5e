//! Cloudflare Workers emulation, bindings: `[vars]` (strings and JSON
//! values) and `.dev.vars` secrets from a `wrangler.toml`, and KV
//! namespaces on SQLite under the state directory — every operation,
//! persistence across a restart, and expiry.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{worker_dir, ServerBuilder};

const WRANGLER: &str = r#"
name = "bindings"
main = "src/index.js"
compatibility_date = "2025-01-01"

[vars]
GREETING = "hello"
SETTINGS = { level = 3, tags = ["a", "b"], beta = true, alpha = "first" }

[[kv_namespaces]]
binding = "STORE"
id = "0f2ac74b498b48028cb68387c421e279"
"#;

const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const q = (k) => url.searchParams.get(k);
    const kv = env.STORE;
    try {
      switch (url.pathname) {
        case '/env':
          return Response.json({ greeting: env.GREETING, settings: env.SETTINGS, secret: env.API_TOKEN, kv: typeof kv.get });
        case '/put': {
          const options = {};
          if (q('ttl')) options.expirationTtl = Number(q('ttl'));
          if (q('exp')) options.expiration = Number(q('exp'));
          if (q('meta')) options.metadata = JSON.parse(q('meta'));
          await kv.put(q('key'), q('value'), options);
          return new Response('stored');
        }
        case '/put-bytes':
          await kv.put(q('key'), new Uint8Array([0, 1, 2, 255]));
          return new Response('stored');
        case '/get': {
          const type = q('type') || 'text';
          const value = await kv.get(q('key'), { type });
          if (type === 'arrayBuffer') return Response.json(value && [...new Uint8Array(value)]);
          if (type === 'stream') return value ? new Response(value) : new Response('null');
          return Response.json(value);
        }
        case '/meta':
          return Response.json(await kv.getWithMetadata(q('key')));
        case '/list':
          return Response.json(await kv.list({ prefix: q('prefix') || undefined, limit: q('limit') ? Number(q('limit')) : undefined, cursor: q('cursor') || undefined }));
        case '/delete':
          await kv.delete(q('key'));
          return new Response('deleted');
      }
    } catch (e) {
      return new Response(`${e.name}: ${e.message}`, { status: 400 });
    }
    return new Response('not here', { status: 404 });
  },
};
"#;

fn setup(tag: &str) -> (common::TempDir, std::path::PathBuf) {
    worker_dir(
        tag,
        &[
            ("app/wrangler.toml", WRANGLER),
            ("app/src/index.js", WORKER),
            ("app/.dev.vars", "API_TOKEN=\"s3cr3t value\"\n"),
        ],
        "/ = worker:app/wrangler.toml\n",
    )
}

#[test]
fn vars_json_values_and_dev_vars_secrets_are_in_env() {
    let (_dir, config) = setup("workers-vars");
    let server = ServerBuilder::new(&config).start();
    assert_eq!(
        server.get("/env", &[]).text(),
        // A table keeps its keys in the file's order, as wrangler passes it.
        r#"{"greeting":"hello","settings":{"level":3,"tags":["a","b"],"beta":true,"alpha":"first"},"secret":"s3cr3t value","kv":"function"}"#
    );
}

#[test]
fn kv_operations_behave_as_on_cloudflare() {
    let (dir, config) = setup("workers-kv");
    let server = ServerBuilder::new(&config).start();
    let get = |path: &str| server.get(path, &[]).text();
    assert_eq!(
        get("/put?key=user:1&value=ann&meta=%7B%22role%22%3A%22admin%22%7D"),
        "stored"
    );
    assert_eq!(get("/put?key=user:2&value=%7B%22n%22%3A2%7D"), "stored");
    assert_eq!(get("/put?key=user:3&value=cid"), "stored");
    assert_eq!(get("/put?key=zeta&value=z"), "stored");
    assert_eq!(get("/put-bytes?key=bytes"), "stored");
    assert_eq!(get("/get?key=user:1"), "\"ann\"");
    assert_eq!(get("/get?key=user:2&type=json"), "{\"n\":2}");
    assert_eq!(get("/get?key=bytes&type=arrayBuffer"), "[0,1,2,255]");
    assert_eq!(
        server.get("/get?key=bytes&type=stream", &[]).body,
        [0, 1, 2, 255]
    );
    assert_eq!(get("/get?key=missing"), "null");
    assert_eq!(
        get("/meta?key=user:1"),
        r#"{"value":"ann","metadata":{"role":"admin"},"cacheStatus":null}"#
    );
    assert_eq!(
        get("/meta?key=missing"),
        r#"{"value":null,"metadata":null,"cacheStatus":null}"#
    );

    // list: prefix, limit and cursor.
    let page = get("/list?prefix=user:&limit=2");
    assert!(
        page.contains(r#"{"name":"user:1","metadata":{"role":"admin"}},{"name":"user:2"}"#),
        "{page}"
    );
    assert!(page.contains(r#""list_complete":false"#), "{page}");
    let cursor = page
        .split("\"cursor\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a cursor");
    let rest = get(&format!("/list?prefix=user:&limit=2&cursor={cursor}"));
    assert!(rest.contains(r#""keys":[{"name":"user:3"}]"#), "{rest}");
    assert!(rest.contains(r#""list_complete":true"#), "{rest}");
    assert!(get("/list").contains("zeta"));

    assert_eq!(get("/delete?key=user:3"), "deleted");
    assert_eq!(get("/get?key=user:3"), "null");
    assert_eq!(get("/delete?key=never-there"), "deleted");

    // Expiration rules as on Cloudflare.
    let short = server.get("/put?key=t&value=v&ttl=30", &[]);
    assert_eq!(short.status, 400);
    assert!(
        short.text().contains("Expiration TTL must be at least 60"),
        "{}",
        short.text()
    );
    let past = server.get("/put?key=t&value=v&exp=1000", &[]);
    assert_eq!(past.status, 400, "{}", past.text());
    assert_eq!(get("/put?key=t&value=v&ttl=60"), "stored");
    assert_eq!(get("/get?key=t"), "\"v\"");
    let long_key = "k".repeat(513);
    let too_long = server.get(&format!("/put?key={long_key}&value=v"), &[]);
    assert_eq!(too_long.status, 400);
    assert!(
        too_long.text().contains("exceeds key length limit of 512"),
        "{}",
        too_long.text()
    );

    // The data lives in the state directory beside wrangler.toml.
    let db = dir
        .path()
        .join("app/.wrangler/state/kv/0f2ac74b498b48028cb68387c421e279.sqlite");
    assert!(db.exists(), "{} is missing", db.display());
}

#[test]
fn kv_data_survives_a_restart() {
    let (_dir, config) = setup("workers-kv-restart");
    let server = ServerBuilder::new(&config).start();
    assert_eq!(
        server.get("/put?key=kept&value=across", &[]).text(),
        "stored"
    );
    let (status, _, stderr) = server.terminate();
    assert!(status.success(), "{status:?}: {:#?}", stderr.snapshot());
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/get?key=kept", &[]).text(), "\"across\"");
}

#[test]
fn kv_values_expire() {
    let (_dir, config) = setup("workers-kv-expiry");
    let server = ServerBuilder::new(&config).start();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // The shortest expiry Cloudflare allows is 60 s from now.
    let at = now + 61;
    assert_eq!(
        server
            .get(&format!("/put?key=brief&value=v&exp={at}"), &[])
            .text(),
        "stored"
    );
    assert_eq!(
        server.get("/put?key=ttl&value=v&ttl=60", &[]).text(),
        "stored"
    );
    assert_eq!(server.get("/get?key=brief", &[]).text(), "\"v\"");
    let listed = server.get("/list?prefix=brief", &[]).text();
    assert!(listed.contains(&format!("\"expiration\":{at}")), "{listed}");
    // Wait until both have expired.
    while SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        <= at
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(server.get("/get?key=brief", &[]).text(), "null");
    assert_eq!(server.get("/get?key=ttl", &[]).text(), "null");
    assert!(!server.get("/list", &[]).text().contains("brief"));
}
