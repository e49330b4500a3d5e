//! `nodejs_compat`: with the compatibility flag, `node:buffer`,
//! `node:events`, `node:util`, `node:crypto`, `node:async_hooks` and
//! `node:process` (and the bare names, and the globals `Buffer` and
//! `process`) answer as workerd's do for the script in
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
            ("off/wrangler.toml", "name = \"off\"\nmain = \"main.js\"\n"),
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
        "/off = worker:off/wrangler.toml\n/on = worker:on/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/off", &[]).status, 502);
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
