//! `nodejs_compat`: with the compatibility flag, `node:buffer`,
//! `node:events`, `node:util`, `node:crypto`, `node:async_hooks` and
//! `node:process` (and the bare names, and the globals `Buffer` and
//! `process`; on by default from compatibility date 2026-08-04) answer as
//! workerd's do for the script in
//! tests/workers/node (expected.txt recorded from workerd 2026-12-01 with
//! `nodejs_compat` and compatibility date 2025-05-01); without the flag a
//! `node:` import fails as on Cloudflare; a CommonJS package `require`s
//! them.

mod common;

use common::{worker_dir, ServerBuilder};

fn fixture(name: &str) -> String {
    let path = common::workspace()
        .join("crates/flexilib/tests/workers/node")
        .join(name);
    std::fs::read_to_string(path).expect("node fixture")
}

#[test]
fn node_builtins_answer_as_workerd_with_the_flag() {
    let (_dir, config) = worker_dir(
        "workers-node",
        &[
            ("app/main.js", &fixture("main.js")),
            (
                "app/wrangler.toml",
                "name = \"node\"\nmain = \"main.js\"\ncompatibility_date = \"2025-05-01\"\ncompatibility_flags = [\"nodejs_compat\"]\n\n[vars]\nGREETING = \"hi\"\nCOUNT = 3\n",
            ),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    let expected = fixture("expected.txt");
    let got = server.get("/", &[]).text();
    for (want, line) in expected.lines().zip(got.lines()) {
        assert_eq!(line, want);
    }
    assert_eq!(got, expected);
}

#[test]
fn without_the_flag_a_node_import_fails_and_a_commonjs_package_requires_them_with_it() {
    let cjs = "const { EventEmitter } = require('events');\nconst crypto = require('node:crypto');\nconst { Buffer } = require('buffer');\nmodule.exports = function tag(text) { const e = new EventEmitter(); let out; e.on('t', (v) => { out = crypto.createHash('sha256').update(Buffer.from(v)).digest('hex').slice(0, 8); }); e.emit('t', text); return out; };\n";
    let (_dir, config) = worker_dir(
        "workers-node-flag",
        &[
            (
                "off/main.js",
                "import { Buffer } from 'node:buffer';\nexport default { fetch() { return new Response(typeof Buffer); } };\n",
            ),
            (
                "off/wrangler.toml",
                "name = \"off\"\nmain = \"main.js\"\ncompatibility_date = \"2026-08-03\"\n",
            ),
            (
                "dated/main.js",
                "import { Buffer } from 'node:buffer';\nexport default { fetch() { return new Response(typeof Buffer); } };\n",
            ),
            // From this date on nodejs_compat is Cloudflare's default.
            (
                "dated/wrangler.toml",
                "name = \"dated\"\nmain = \"main.js\"\ncompatibility_date = \"2026-08-04\"\n",
            ),
            (
                "on/main.js",
                "import tag from 'tagger';\nexport default { fetch() { return new Response(tag('hello') + ' ' + typeof process.env + ' ' + String(process.env.GREETING)); } };\n",
            ),
            (
                "on/wrangler.toml",
                "name = \"on\"\nmain = \"main.js\"\ncompatibility_date = \"2025-01-01\"\ncompatibility_flags = [\"nodejs_compat\"]\n\n[vars]\nGREETING = \"hi\"\n",
            ),
            ("on/node_modules/tagger/package.json", "{\"name\":\"tagger\",\"version\":\"1.0.0\",\"main\":\"index.js\"}\n"),
            ("on/node_modules/tagger/index.js", cjs),
        ],
        "/off = worker:off/wrangler.toml\n/on = worker:on/wrangler.toml\n/dated = worker:dated/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/off", &[]).status, 502);
    assert_eq!(server.get("/dated", &[]).text(), "function");
    assert!(
        server
            .stderr
            .snapshot()
            .iter()
            .any(|l| l.contains("No such module \"node:buffer\".")),
        "{:?}",
        server.stderr.snapshot()
    );
    // Before the compatibility date 2025-04-01, process.env is empty.
    assert_eq!(server.get("/on", &[]).text(), "2cf24dba object undefined");
}

/// A project with npm packages written for Node (installed from the
/// committed lock file by scripts/install-worker-packages.sh):
/// cookie-signature `require`s `crypto` (HMAC-SHA256, timingSafeEqual),
/// safe-buffer `require`s `buffer`. The answers are workerd's for
/// esbuild's bundle of the same project (built-ins external, the
/// `require`s mapped to imports as wrangler does).
#[test]
fn npm_packages_written_for_node_run_with_the_flag_as_on_workerd() {
    let project = common::workspace().join("examples/worker-node-compat");
    assert!(
        project
            .join("node_modules/cookie-signature/package.json")
            .exists(),
        "run scripts/install-worker-packages.sh (npm ci in examples/worker-node-compat)"
    );
    let (_dir, config) = worker_dir(
        "workers-node-npm",
        &[],
        &format!("/ = worker:{}\n", project.join("wrangler.toml").display()),
    );
    let server = ServerBuilder::new(&config).start();
    let signed = server.get("/sign?value=hello", &[]).text();
    assert_eq!(signed, "hello.EUDVf0goD42K76fQN8a9fypzSQUfBcS6ILTTxb0O3iI");
    assert_eq!(
        server.get(&format!("/unsign?cookie={signed}"), &[]).text(),
        "hello"
    );
    assert_eq!(server.get("/unsign?cookie=hello.xx", &[]).text(), "false");
    assert_eq!(
        server.get("/bytes?text=h%C3%A9", &[]).text(),
        "68c3a9 aMOp true"
    );
    assert_eq!(server.get("/events", &[]).text(), "a,first:a,b");
    // The store set for the request is there after an await (a timer).
    let handles: Vec<_> = (0..8)
        .map(|i| common::request_in_background(server.addr, &format!("/tag?tag=t{i}"), &[]))
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let text = handle.join().expect("client").0.text();
        assert!(text.starts_with(&format!("t{i} ")), "{text}");
    }
    assert_eq!(server.get("/tag?tag=t1", &[]).text(), "t1 e5353879");
}
