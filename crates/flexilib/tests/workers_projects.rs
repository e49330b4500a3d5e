//! Workers projects as developers have them, run unbundled: TypeScript,
//! npm packages (ESM and CommonJS, `exports` conditions, hoisted
//! `node_modules`), `wrangler.jsonc`; a broken edit keeps the old code
//! serving and names file, line and column; a fixed one is served.

mod common;

use std::time::{Duration, Instant};

use common::{replace_file, worker_dir, workspace, Server, ServerBuilder};

/// Waits until `GET path` answers `expected`.
fn wait_for_body(server: &Server, path: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = server.get(path, &[]).text();
        if text == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: {text:?}, not {expected:?}; stderr:\n{}",
            server.stderr.snapshot().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_hono_project_in_typescript_with_npm_packages_runs_unmodified() {
    let project = workspace().join("examples/worker-hono-ts");
    assert!(
        project.join("node_modules/hono/package.json").exists(),
        "run scripts/install-worker-packages.sh (npm ci in examples/worker-hono-ts)"
    );
    let (_dir, config) = worker_dir(
        "workers-hono",
        &[],
        &format!("/ = worker:{}\n", project.join("wrangler.toml").display()),
    );
    let server = ServerBuilder::new(&config).start();
    let home = server.get("/", &[]);
    assert_eq!(home.status, 200, "{}", home.text());
    assert_eq!(home.text(), "Hello from Hono!\n");
    assert_eq!(
        home.header("content-type"),
        Some("text/plain;charset=UTF-8"),
        "as Hono's c.text sets it"
    );
    // `ms`, a CommonJS package, imported by default.
    assert_eq!(server.get("/duration/2h", &[]).text(), r#"{"ms":7200000}"#);
    assert_eq!(
        server.get("/users/42", &[]).text(),
        r#"{"id":"42","path":"/users/42"}"#
    );
    assert_eq!(server.get("/nowhere", &[]).status, 404, "Hono's notFound");
}

const PACKAGE_CONDITIONS: &str = r#"{
  "name": "conditions",
  "exports": {
    ".": { "workerd": "./workerd.js", "node": "./node.js", "default": "./default.js" },
    "./cjs": { "import": "./wrapper.mjs", "require": "./cjs.cjs" }
  }
}"#;

const INDEX_TS: &str = r#"import which from "conditions";
import legacy, { named } from "legacy";
import { twice } from "./math";
import data from "./data.json";

interface Answer { which: string; legacy: string; named: string; twice: number; data: number[] }

export default {
  async fetch(request: Request, env: { WHO: string }): Promise<Response> {
    const answer: Answer = { which, legacy: legacy.kind, named, twice: twice(21), data: data.list };
    return Response.json({ ...answer, who: env.WHO });
  },
} satisfies ExportedHandler<{ WHO: string }>;
"#;

fn project_files() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "app/wrangler.jsonc",
            "{\n  // wrangler.jsonc, as `npm create cloudflare` writes it\n  \"name\": \"app\",\n  \"main\": \"src/index.ts\",\n  \"compatibility_date\": \"2026-11-01\",\n  \"vars\": { \"WHO\": \"jsonc\" },\n}\n",
        ),
        ("app/src/index.ts", INDEX_TS),
        (
            "app/src/math.ts",
            "export const twice = (n: number): number => n * 2;\n",
        ),
        ("app/src/data.json", "{ \"list\": [1, 2] }\n"),
        // A package with conditional exports (workerd's condition wins),
        // hoisted above the project as npm workspaces do.
        ("node_modules/conditions/package.json", PACKAGE_CONDITIONS),
        (
            "node_modules/conditions/workerd.js",
            "export default 'workerd';\n",
        ),
        ("node_modules/conditions/node.js", "export default 'node';\n"),
        (
            "node_modules/conditions/default.js",
            "export default 'default';\n",
        ),
        // A CommonJS package of the project, requiring a JSON file, the
        // hoisted package by its `require` export, and one not installed.
        (
            "app/node_modules/legacy/package.json",
            "{ \"name\": \"legacy\", \"main\": \"index.js\" }\n",
        ),
        (
            "app/node_modules/legacy/index.js",
            "const meta = require('./meta.json');\nconst helper = require('conditions/cjs');\nlet optional;\ntry { optional = require('not-installed'); } catch (e) { optional = e.code; }\nmodule.exports = { kind: meta.kind + '/' + helper.from + '/' + optional };\nmodule.exports.named = 'named export';\n",
        ),
        ("app/node_modules/legacy/meta.json", "{ \"kind\": \"cjs\" }\n"),
        (
            "node_modules/conditions/cjs.cjs",
            "exports.from = 'require-condition';\n",
        ),
        (
            "node_modules/conditions/wrapper.mjs",
            "export const from = 'import-condition';\n",
        ),
    ]
}

#[test]
fn typescript_packages_and_wrangler_jsonc_resolve_as_wrangler_bundles_them() {
    let (dir, config) = worker_dir(
        "workers-project",
        &project_files(),
        "/ = worker:app/wrangler.jsonc\n",
    );
    let server = ServerBuilder::new(&config).start();
    let response = server.get("/", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON");
    assert_eq!(json["which"], "workerd");
    assert_eq!(json["legacy"], "cjs/require-condition/MODULE_NOT_FOUND");
    assert_eq!(json["named"], "named export");
    assert_eq!(json["twice"], 42);
    assert_eq!(json["data"], serde_json::json!([1, 2]));
    assert_eq!(json["who"], "jsonc");

    // A broken edit: the build fails, naming file, line and column; the
    // old code keeps serving.
    replace_file(
        &dir,
        "app/src/math.ts",
        "export const twice = (n: number): number => n * ;\n",
    );
    let line = server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("math.ts:1:"))
        .expect("the syntax error is logged with its position");
    assert!(line.contains("did not start"), "{line}");
    assert_eq!(server.get("/", &[]).status, 200, "the old code serves");
    // Fixed: served within a second or so.
    replace_file(
        &dir,
        "app/src/math.ts",
        "export const twice = (n: number): number => n * 3;\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let json: serde_json::Value =
            serde_json::from_slice(&server.get("/", &[]).body).expect("JSON");
        if json["twice"] == 63 {
            break;
        }
        assert!(Instant::now() < deadline, "the fixed code never served");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A package's file changing (an `npm install`) rebuilds too.
    replace_file(
        &dir,
        "node_modules/conditions/workerd.js",
        "export default 'workerd, updated';\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let json: serde_json::Value =
            serde_json::from_slice(&server.get("/", &[]).body).expect("JSON");
        if json["which"] == "workerd, updated" {
            break;
        }
        assert!(Instant::now() < deadline, "the package's edit never served");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_missing_package_or_built_in_says_what_to_do() {
    let (_dir, config) = worker_dir(
        "workers-missing",
        &[
            (
                "app/index.ts",
                "export default { async fetch(request: Request) { const which = new URL(request.url).pathname.slice(1); try { await import(which === 'fs' ? 'node:fs' : 'left-pad'); return new Response('loaded'); } catch (e) { return new Response(String(e.message)); } } };\n",
            ),
        ],
        "/ = worker:app/index.ts\n",
    );
    let server = ServerBuilder::new(&config).start();
    wait_for_body(
        &server,
        "/pad",
        "cannot import 'left-pad': no such package in the project's node_modules (run npm install)",
    );
    wait_for_body(
        &server,
        "/fs",
        "No such module \"node:fs\". (the node: built-ins need compatibility_flags = [\"nodejs_compat\"])",
    );
}
