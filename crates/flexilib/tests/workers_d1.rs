//! Cloudflare Workers emulation, D1: `[[d1_databases]]` in `wrangler.toml`
//! (and `wrangler.jsonc`) gives `env.DB`, a D1 database on SQLite under the
//! route's state directory — `prepare`/`bind` and `first`, `all`, `raw`,
//! `run`; `batch` in one transaction (rolled back when a statement fails);
//! `exec`; D1's result shapes, `meta`, value types and error messages; the
//! data kept across a restart.
//!
//! The expected shapes and messages are those of workerd's D1 binding
//! (`src/cloudflare/internal/d1-api.ts`: `{ success, meta, results }`,
//! `D1_ERROR: …`, `D1_TYPE_ERROR: Type '…' not supported for value '…'`,
//! `D1_COLUMN_NOTFOUND: Column not found (…)`, `D1_EXEC_ERROR: Error in line
//! N: …`) over the local simulator `wrangler dev` runs (miniflare's D1
//! object). Compared with miniflare 3.20250718.3 on Node 20 (this file's
//! worker run by `new Miniflare({ modules: true, d1Databases: { DB } })`):
//! `/shapes`, `/errors` and `/batch` answer the same JSON but for
//! - `meta.served_by`: `miniflare.db` there, `flexilib.db` here;
//! - `meta.rows_written` / `rows_read`: workerd's SQLite counts index
//!   entries and index lookups (an INSERT into `users`, which has a UNIQUE
//!   index, writes 2 rows there, 1 here; an UPDATE found through the index
//!   reads 1 row there, 0 here): SQLite has no such counters, so here
//!   `rows_written` is the rows changed and `rows_read` the rows a scan
//!   stepped through or returned;
//! - a failing `exec`: miniflare runs all lines as one query and names
//!   line 1 whatever line failed; here (as on D1, which answers per line)
//!   the failing line is named — both roll the whole `exec` back;
//! - `batch` of something else than statements: a TypeError here, an
//!   internal parse error there.

mod common;

use common::{worker_dir, ServerBuilder};
use serde_json::{json, Value};

const WRANGLER: &str = r#"
name = "d1-app"
main = "src/index.js"
compatibility_date = "2025-01-01"

[[d1_databases]]
binding = "DB"
database_name = "app-db"
database_id = "7a1c3f0e-0d4e-4c6b-9c55-1f2e3d4c5b6a"
"#;

const WORKER: &str = r#"
// `duration` and `size_after` vary from run to run: their type is kept.
const norm = (r) => {
  if (r && r.meta) {
    r.meta.duration = typeof r.meta.duration;
    r.meta.size_after = typeof r.meta.size_after;
  }
  return r;
};
const caught = (e) => ({ error: `${e.name}: ${e.message}`, cause: e.cause ? e.cause.message : null });
async function attempt(f) {
  try {
    return await f();
  } catch (e) {
    return caught(e);
  }
}
const SCHEMA = 'CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL, active INTEGER, avatar BLOB)';

export default {
  async fetch(request, env) {
    const db = env.DB;
    const url = new URL(request.url);
    const out = {};
    switch (url.pathname) {
      case '/shapes': {
        const exec = await db.exec(`${SCHEMA}\n\nINSERT INTO users (name, score, active) VALUES ('ann', 1.5, 1)`);
        out.exec = { count: exec.count, duration: typeof exec.duration };
        out.run = norm(await db.prepare('INSERT INTO users (name, score, active, avatar) VALUES (?, ?, ?, ?)')
          .bind('bob', 2, false, new Uint8Array([0, 1, 255])).run());
        out.buffer = norm(await db.prepare('INSERT INTO users (name, avatar) VALUES (?1, ?2)')
          .bind('cid', new Uint8Array([7, 8]).buffer).run());
        out.all = norm(await db.prepare('SELECT id, name, score, active, avatar FROM users ORDER BY id').all());
        out.first = await db.prepare('SELECT * FROM users WHERE name = ?').bind('bob').first();
        out.firstColumn = await db.prepare('SELECT name FROM users WHERE id = ?').bind(1).first('name');
        out.firstNone = await db.prepare('SELECT * FROM users WHERE id = ?').bind(99).first();
        out.raw = await db.prepare('SELECT id, name FROM users ORDER BY id').raw();
        out.rawNames = await db.prepare('SELECT id, name FROM users ORDER BY id LIMIT 1').raw({ columnNames: true });
        out.rawNone = await db.prepare('SELECT id FROM users WHERE id > 99').raw({ columnNames: true });
        out.update = norm(await db.prepare('UPDATE users SET score = 10 WHERE active IS NOT NULL').run());
        out.readBack = await db.prepare("SELECT typeof(score) AS t, score FROM users WHERE name = 'bob'").first();
        const stmt = db.prepare('SELECT ?, ?, ?, ?, ?').bind(true, [1, 2], null, 'x', 3.5);
        out.statement = { statement: stmt.statement, params: stmt.params };
        out.multi = await db.prepare('SELECT 1 AS a; SELECT ? AS b').bind(2).all().then((r) => r.results);
        return Response.json(out);
      }
      case '/errors': {
        await db.exec(SCHEMA);
        await db.prepare("INSERT OR IGNORE INTO users (name) VALUES ('ann')").run();
        out.noTable = await attempt(() => db.prepare('SELECT * FROM nope').all());
        out.unique = await attempt(() => db.prepare('INSERT INTO users (name) VALUES (?)').bind('ann').run());
        out.notNull = await attempt(() => db.prepare('INSERT INTO users (score) VALUES (1)').run());
        out.syntax = await attempt(() => db.prepare('SELEC 1').all());
        out.bindings = await attempt(() => db.prepare('SELECT ?, ?').bind(1).all());
        out.empty = await attempt(() => db.prepare('').all());
        out.column = await attempt(() => db.prepare('SELECT name FROM users').first('nope'));
        out.undefinedValue = await attempt(() => db.prepare('SELECT ?').bind(undefined));
        out.bigint = await attempt(() => db.prepare('SELECT ?').bind(1n));
        out.object = await attempt(() => db.prepare('SELECT ?').bind({}));
        out.exec = await attempt(() => db.exec("INSERT INTO users (name) VALUES ('dan')\nSELEC 1"));
        out.execKept = await db.prepare("SELECT count(*) AS n FROM users WHERE name = 'dan'").first('n');
        return Response.json(out);
      }
      case '/batch': {
        await db.exec(SCHEMA);
        const results = await db.batch([
          db.prepare('INSERT INTO users (name) VALUES (?)').bind('eve'),
          db.prepare('UPDATE users SET score = 9 WHERE name = ?').bind('eve'),
          db.prepare('SELECT name, score FROM users WHERE name = ?').bind('eve'),
        ]);
        out.batch = results.map(norm);
        out.failed = await attempt(() => db.batch([
          db.prepare('INSERT INTO users (name) VALUES (?)').bind('fay'),
          db.prepare('INSERT INTO users (name) VALUES (?)').bind('eve'),
        ]));
        out.fayKept = await db.prepare("SELECT count(*) AS n FROM users WHERE name = 'fay'").first('n');
        out.notStatements = await attempt(() => db.batch(['SELECT 1']));
        return Response.json(out);
      }
      case '/put': {
        await db.exec(SCHEMA);
        const r = await db.prepare('INSERT INTO users (name) VALUES (?)').bind(url.searchParams.get('name')).run();
        return Response.json(r.meta.changes);
      }
      case '/names':
        return Response.json((await db.prepare('SELECT name FROM users ORDER BY name').raw()).flat());
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
        ],
        "/ = worker:app/wrangler.toml\n",
    )
}

fn json_of(server: &common::Server, path: &str) -> Value {
    let response = server.get(path, &[]);
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{path}: {e}: {}", response.text()))
}

fn meta(changes: u64, last_row_id: u64, changed_db: bool, rows_read: u64) -> Value {
    json!({
        "served_by": "flexilib.db",
        "duration": "number",
        "changes": changes,
        "last_row_id": last_row_id,
        "changed_db": changed_db,
        "size_after": "number",
        "rows_read": rows_read,
        "rows_written": changes,
    })
}

#[test]
fn d1_statements_answer_in_d1_shapes() {
    let (dir, config) = setup("workers-d1-shapes");
    let server = ServerBuilder::new(&config).start();
    let out = json_of(&server, "/shapes");
    // exec: blank lines are not queries.
    assert_eq!(out["exec"], json!({ "count": 2, "duration": "number" }));
    // run: D1Result with the meta, key order included.
    assert_eq!(
        serde_json::to_string(&out["run"]).expect("json"),
        serde_json::to_string(&json!({
            "success": true,
            "meta": meta(1, 2, true, 0),
            "results": [],
        }))
        .expect("json")
    );
    assert_eq!(out["buffer"]["meta"]["last_row_id"], 3);
    // Types: REAL, INTEGER (a boolean bound as 0), NULL, BLOB as bytes.
    assert_eq!(
        out["all"],
        json!({
            "success": true,
            "meta": meta(0, 3, false, 3),
            "results": [
                { "id": 1, "name": "ann", "score": 1.5, "active": 1, "avatar": null },
                { "id": 2, "name": "bob", "score": 2, "active": 0, "avatar": [0, 1, 255] },
                { "id": 3, "name": "cid", "score": null, "active": null, "avatar": [7, 8] },
            ],
        })
    );
    assert_eq!(
        out["first"],
        json!({ "id": 2, "name": "bob", "score": 2, "active": 0, "avatar": [0, 1, 255] })
    );
    assert_eq!(out["firstColumn"], "ann");
    assert_eq!(out["firstNone"], Value::Null);
    assert_eq!(out["raw"], json!([[1, "ann"], [2, "bob"], [3, "cid"]]));
    assert_eq!(out["rawNames"], json!([["id", "name"], [1, "ann"]]));
    assert_eq!(out["rawNone"], json!([["id"]]));
    assert_eq!(out["update"]["meta"]["changes"], 2);
    assert_eq!(out["update"]["meta"]["rows_written"], 2);
    assert_eq!(out["update"]["meta"]["changed_db"], true);
    assert_eq!(out["readBack"], json!({ "t": "real", "score": 10 }));
    // bind() keeps values as D1 does: booleans as 1/0, bytes as arrays.
    assert_eq!(
        out["statement"],
        json!({ "statement": "SELECT ?, ?, ?, ?, ?", "params": [1, [1, 2], null, "x", 3.5] })
    );
    // Several statements: all run, the last takes the values and answers.
    assert_eq!(out["multi"], json!([{ "b": 2 }]));
    // The database lives in the state directory beside wrangler.toml.
    let db = dir
        .path()
        .join("app/.wrangler/state/d1/7a1c3f0e-0d4e-4c6b-9c55-1f2e3d4c5b6a.sqlite");
    assert!(db.exists(), "{} is missing", db.display());
    // The binding is emulated now: no "not emulated" warning for it.
    assert!(
        !server
            .stderr
            .snapshot()
            .iter()
            .any(|l| l.contains("d1_databases")),
        "{:#?}",
        server.stderr.snapshot()
    );
}

#[test]
fn d1_errors_read_as_d1_errors() {
    let (_dir, config) = setup("workers-d1-errors");
    let server = ServerBuilder::new(&config).start();
    let out = json_of(&server, "/errors");
    let error = |message: &str, cause: &str| json!({ "error": message, "cause": cause });
    assert_eq!(
        out["noTable"],
        error(
            "Error: D1_ERROR: no such table: nope: SQLITE_ERROR",
            "no such table: nope: SQLITE_ERROR"
        )
    );
    assert_eq!(
        out["unique"],
        error(
            "Error: D1_ERROR: UNIQUE constraint failed: users.name: SQLITE_CONSTRAINT",
            "UNIQUE constraint failed: users.name: SQLITE_CONSTRAINT"
        )
    );
    assert_eq!(
        out["notNull"]["error"],
        "Error: D1_ERROR: NOT NULL constraint failed: users.name: SQLITE_CONSTRAINT"
    );
    assert_eq!(
        out["syntax"]["error"],
        "Error: D1_ERROR: near \"SELEC\": syntax error at offset 0: SQLITE_ERROR"
    );
    assert_eq!(
        out["bindings"]["error"],
        "Error: D1_ERROR: Wrong number of parameter bindings for SQL query."
    );
    assert_eq!(
        out["empty"]["error"],
        "Error: D1_ERROR: No SQL statements detected."
    );
    assert_eq!(
        out["column"],
        error(
            "Error: D1_COLUMN_NOTFOUND: Column not found (nope)",
            "Column not found"
        )
    );
    assert_eq!(
        out["undefinedValue"],
        error(
            "Error: D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'",
            "Type 'undefined' not supported for value 'undefined'"
        )
    );
    assert_eq!(
        out["bigint"]["error"],
        "Error: D1_TYPE_ERROR: Type 'bigint' not supported for value '1'"
    );
    assert_eq!(
        out["object"]["error"],
        "Error: D1_TYPE_ERROR: Type 'object' not supported for value '[object Object]'"
    );
    assert_eq!(
        out["exec"]["error"],
        "Error: D1_EXEC_ERROR: Error in line 2: SELEC 1: near \"SELEC\": syntax error at offset 0: SQLITE_ERROR"
    );
    // exec is one transaction: its first line is undone too.
    assert_eq!(out["execKept"], 0);
}

#[test]
fn d1_batch_is_one_transaction() {
    let (_dir, config) = setup("workers-d1-batch");
    let server = ServerBuilder::new(&config).start();
    let out = json_of(&server, "/batch");
    let batch = out["batch"].as_array().expect("an array of results");
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0]["meta"]["changes"], 1);
    assert_eq!(batch[0]["results"], json!([]));
    assert_eq!(batch[1]["meta"]["changes"], 1);
    assert_eq!(batch[2]["success"], true);
    assert_eq!(batch[2]["results"], json!([{ "name": "eve", "score": 9 }]));
    assert_eq!(
        out["failed"]["error"],
        "Error: D1_ERROR: UNIQUE constraint failed: users.name: SQLITE_CONSTRAINT"
    );
    // The insert before the failing statement was rolled back.
    assert_eq!(out["fayKept"], 0);
    assert_eq!(
        out["notStatements"]["error"],
        "TypeError: batch() takes an array of prepared statements (D1PreparedStatement)."
    );
}

#[test]
fn d1_data_survives_a_restart() {
    let (_dir, config) = setup("workers-d1-restart");
    let server = ServerBuilder::new(&config).start();
    assert_eq!(json_of(&server, "/put?name=kept"), json!(1));
    assert_eq!(json_of(&server, "/put?name=also"), json!(1));
    let (status, _, stderr) = server.terminate();
    assert!(status.success(), "{status:?}: {:#?}", stderr.snapshot());
    let server = ServerBuilder::new(&config).start();
    assert_eq!(json_of(&server, "/names"), json!(["also", "kept"]));
}

#[test]
fn d1_from_wrangler_jsonc() {
    let jsonc = r#"{
  // wrangler.jsonc, as `npm create cloudflare` writes it
  "name": "d1-jsonc",
  "main": "src/index.js",
  "d1_databases": [
    { "binding": "DB", "database_name": "jsonc-db", "database_id": "jsonc-id" },
  ],
}"#;
    let (dir, config) = worker_dir(
        "workers-d1-jsonc",
        &[("app/wrangler.jsonc", jsonc), ("app/src/index.js", WORKER)],
        "/ = worker:app/wrangler.jsonc\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(json_of(&server, "/put?name=j"), json!(1));
    assert_eq!(json_of(&server, "/names"), json!(["j"]));
    assert!(dir
        .path()
        .join("app/.wrangler/state/d1/jsonc-id.sqlite")
        .exists());
}
