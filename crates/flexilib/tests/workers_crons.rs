//! `[triggers] crons` fire on their schedule (UTC, every minute here), with
//! `scheduled(event, env, ctx)` seeing the cron; a cron that cannot be read
//! fails the build, naming it.

mod common;

use std::time::Duration;

use common::{worker_dir, ServerBuilder};

const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    return new Response((await env.STORE.get('fired')) ?? 'never');
  },
  async scheduled(event, env, ctx) {
    console.log(`cron fired: ${event.cron} (${event.type})`);
    ctx.waitUntil(env.STORE.put('fired', event.cron));
  },
};
"#;

#[test]
fn a_cron_fires_within_its_minute_and_scheduled_sees_it() {
    let (_dir, config) = worker_dir(
        "workers-crons",
        &[
            ("app/index.js", WORKER),
            (
                "app/wrangler.toml",
                "name = \"crons\"\nmain = \"index.js\"\n\n[triggers]\ncrons = [\"* * * * *\"]\n\n[[kv_namespaces]]\nbinding = \"STORE\"\nid = \"crons\"\n",
            ),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).text(), "never");
    // The next minute starts within 60 s; a little more for a busy machine.
    let fired = server
        .stderr
        .wait_for(Duration::from_secs(75), |l| l.contains("cron fired:"))
        .unwrap_or_else(|| panic!("no cron fired: {:?}", server.stderr.snapshot()));
    assert!(
        fired.contains("cron fired: * * * * * (scheduled)"),
        "{fired}"
    );
    // Its waitUntil work ran to the end.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.get("/", &[]).text() != "* * * * *" {
        assert!(
            std::time::Instant::now() < deadline,
            "the KV write never landed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_cron_that_cannot_be_read_fails_the_build_naming_it() {
    let (_dir, config) = worker_dir(
        "workers-bad-cron",
        &[
            ("app/index.js", WORKER),
            (
                "app/wrangler.toml",
                "name = \"crons\"\nmain = \"index.js\"\n\n[triggers]\ncrons = [\"61 * * * *\"]\n",
            ),
        ],
        "/ = worker:app/wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).status, 502);
    let line = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("[triggers] crons"))
        .expect("the bad cron is named");
    assert!(line.contains("`61 * * * *`"), "{line}");
}
