//! What a hostile worker script (or another local user) tries with this
//! round's surfaces, and what it gets: D1 SQL cannot open other files,
//! packages come only from directories other users cannot write, a
//! package cannot point outside them, crons fire at most once a minute,
//! Durable Object values are bounded, and a Durable Object's SQL stays in
//! its file and under the CPU limit.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use common::{worker_dir, ServerBuilder};

const D1_WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const sql = new URL(request.url).searchParams.get('sql');
    try { await env.DB.exec(sql); return new Response('ran'); }
    catch (e) { return new Response(`refused: ${e.message}`); }
  },
};
"#;

#[test]
fn d1_sql_cannot_attach_or_write_other_files() {
    let (dir, config) = worker_dir(
        "hostile-d1",
        &[
            ("app/index.js", D1_WORKER),
            (
                "app/wrangler.toml",
                "name = \"d1\"\nmain = \"index.js\"\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"d\"\ndatabase_id = \"d\"\n",
            ),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    let outside = dir.path().join("stolen.sqlite");
    let query = |sql: &str| {
        let encoded: String = url_encode(sql);
        server.get(&format!("/?sql={encoded}"), &[]).text()
    };
    assert_eq!(query("CREATE TABLE t (x)"), "ran");
    let attach = query(&format!("ATTACH DATABASE '{}' AS other", outside.display()));
    assert!(attach.starts_with("refused:"), "{attach}");
    let vacuum = query(&format!("VACUUM INTO '{}'", outside.display()));
    assert!(vacuum.starts_with("refused:"), "{vacuum}");
    assert!(
        !outside.exists(),
        "no file was written outside the state directory"
    );
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const IMPORTER: &str = r#"
export default {
  async fetch(request) {
    const name = new URL(request.url).searchParams.get('m');
    try { const m = await import(name); return new Response(`loaded ${m.default}`); }
    catch (e) { return new Response(`refused: ${e.message}`); }
  },
};
"#;

#[test]
fn packages_come_only_from_directories_other_users_cannot_write() {
    // `shared/` stands for /tmp: a directory every local user can write.
    let (dir, config) = worker_dir(
        "hostile-packages",
        &[
            ("shared/app/index.js", IMPORTER),
            // Planted by another user above the project.
            (
                "shared/node_modules/planted/package.json",
                r#"{"name":"planted","main":"i.js"}"#,
            ),
            (
                "shared/node_modules/planted/i.js",
                "export default 'planted';\n",
            ),
            // The project's own package, whose exports point outside.
            (
                "shared/app/node_modules/sneaky/package.json",
                r#"{"name":"sneaky","exports":{".":"../../../secret.js"}}"#,
            ),
            ("secret.js", "export default 'secret';\n"),
            // A legitimate package of the project.
            (
                "shared/app/node_modules/fine/package.json",
                r#"{"name":"fine","main":"i.js"}"#,
            ),
            (
                "shared/app/node_modules/fine/i.js",
                "export default 'fine';\n",
            ),
        ],
        "/ = worker:shared/app/index.js\n",
    );
    for writable in [
        dir.path().join("shared"),
        dir.path().join("shared/node_modules"),
    ] {
        std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o1777))
            .expect("chmod");
    }
    let server = ServerBuilder::new(&config).start();
    let import = |name: &str| server.get(&format!("/?m={name}"), &[]).text();
    assert_eq!(import("fine"), "loaded fine");
    let planted = import("planted");
    assert!(planted.starts_with("refused:"), "{planted}");
    let sneaky = import("sneaky");
    assert!(
        sneaky.starts_with("refused:") && !sneaky.contains("secret'"),
        "{sneaky}"
    );
}

#[test]
fn a_cron_cannot_fire_more_than_once_a_minute() {
    let (_dir, config) = worker_dir(
        "hostile-cron",
        &[
            (
                "app/index.js",
                "export default { fetch() { return new Response('x'); }, scheduled() {} };\n",
            ),
            (
                "app/wrangler.toml",
                "name = \"c\"\nmain = \"index.js\"\n[triggers]\ncrons = [\"* * * * * *\"]\n",
            ),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).status, 502);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("five fields"))
        .is_some());
}

const OBJECT_WORKER: &str = r#"
import { DurableObject } from "cloudflare:workers";
export class Store extends DurableObject {
  async put(size) { await this.ctx.storage.put('k', 'x'.repeat(size)); return 'stored'; }
}
export default {
  async fetch(request, env) {
    const size = Number(new URL(request.url).searchParams.get('size'));
    try { return new Response(await env.S.getByName('a').put(size)); }
    catch (e) { return new Response(`refused: ${e.message}`); }
  },
};
"#;

#[test]
fn durable_object_values_are_bounded() {
    let (_dir, config) = worker_dir(
        "hostile-objects",
        &[
            ("app/index.js", OBJECT_WORKER),
            (
                "app/wrangler.toml",
                "name = \"o\"\nmain = \"index.js\"\n[[durable_objects.bindings]]\nname = \"S\"\nclass_name = \"Store\"\n",
            ),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/?size=1000", &[]).text(), "stored");
    let big = server.get("/?size=200000", &[]).text();
    assert!(
        big.starts_with("refused:") && big.contains("131072"),
        "{big}"
    );
}

#[test]
fn a_project_reaches_only_the_workers_its_route_allows() {
    let (_dir, config) = worker_dir(
        "hostile-services",
        &[
            (
                "evil/index.js",
                "export default { async fetch(request, env) { return new Response(typeof env.ADMIN); } };\n",
            ),
            (
                "evil/wrangler.toml",
                "name = \"evil\"\nmain = \"index.js\"\n[[services]]\nbinding = \"ADMIN\"\nservice = \"admin\"\n",
            ),
            ("admin/index.js", "export default { fetch() { return new Response('secret'); } };\n"),
            ("admin/wrangler.toml", "name = \"admin\"\nmain = \"index.js\"\n"),
        ],
        // The admin worker sits behind a Host rule; the untrusted project
        // names it in its own wrangler.toml, but its route allows nothing.
        "Host: admin.internal / = worker:admin/wrangler.toml\n/ = worker:evil/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).text(), "undefined");
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("not in this route's `services=`"))
        .is_some());
}

const SQL_OBJECT: &str = r#"
import { DurableObject } from 'cloudflare:workers';
export class Db extends DurableObject {
  run(sql) {
    try { return `ran ${JSON.stringify(this.ctx.storage.sql.exec(sql).toArray())}`; }
    catch (e) { return `refused: ${e.message}`; }
  }
}
export default {
  async fetch(request, env) {
    const sql = new URL(request.url).searchParams.get('sql');
    return new Response(await env.DB.getByName('x').run(sql));
  },
};
"#;

/// A Durable Object's SQL (`ctx.storage.sql`) cannot open other files,
/// lift its size limit or change how SQLite keeps the file, and a runaway
/// query is stopped by the request's CPU limit while the object and the
/// route go on answering.
#[test]
fn durable_object_sql_cannot_escape_its_file_or_wedge_the_thread() {
    let (dir, config) = worker_dir(
        "hostile-do-sql",
        &[
            ("app/index.js", SQL_OBJECT),
            (
                "app/wrangler.toml",
                "name = \"dosql\"\nmain = \"index.js\"\n[[durable_objects.bindings]]\nname = \"DB\"\nclass_name = \"Db\"\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Db\"]\n",
            ),
        ],
        "/ = worker:app/wrangler.toml cpu_ms=200\n",
    );
    let server = ServerBuilder::new(&config).start();
    let outside = dir.path().join("stolen.sqlite");
    let query = |sql: &str| server.get(&format!("/?sql={}", url_encode(sql)), &[]);
    assert_eq!(query("CREATE TABLE t (x)").text(), "ran []");
    for sql in [
        format!("ATTACH DATABASE '{}' AS other", outside.display()),
        format!("VACUUM INTO '{}'", outside.display()),
        "PRAGMA max_page_count = 2147483647".to_string(),
        "PRAGMA writable_schema = ON".to_string(),
        "PRAGMA journal_mode = OFF".to_string(),
    ] {
        let text = query(&sql).text();
        assert!(text.starts_with("refused:"), "{sql}: {text}");
    }
    assert!(
        !outside.exists(),
        "no file was written outside the state directory"
    );
    // Reading the schema is allowed, as on Cloudflare.
    assert!(query("PRAGMA table_info(t)").text().starts_with("ran [{"));
    let started = std::time::Instant::now();
    let spin = query(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        spin.status == 503 || spin.text().contains("interrupted"),
        "{} {}",
        spin.status,
        spin.text()
    );
    assert_eq!(query("SELECT 1 AS one").text(), r#"ran [{"one":1}]"#);
}
