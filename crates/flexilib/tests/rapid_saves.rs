//! Two saves of a file an instance read, a few milliseconds apart (write,
//! then rename, as editors save): the last version always ends up served,
//! even when the second save lands while the instance is being rebuilt
//! from the first.

mod common;

use std::time::{Duration, Instant};

use common::{replace_file, worker_dir, ServerBuilder};

const SCRIPT: &str = r#"
export default {
  async fetch(request, env) { return new Response(env.COLOR); },
};
"#;

fn wrangler(color: &str) -> String {
    format!("name = \"saves\"\nmain = \"index.js\"\n[vars]\nCOLOR = \"{color}\"\n")
}

#[test]
fn the_last_of_two_rapid_saves_is_served() {
    let (dir, config) = worker_dir(
        "rapid-saves",
        &[("index.js", SCRIPT), ("wrangler.toml", &wrangler("start"))],
        "/ = worker:wrangler.toml\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).text(), "start");
    for round in 0..20 {
        let first = format!("first{round}");
        let last = format!("last{round}");
        replace_file(&dir, "wrangler.toml", &wrangler(&first));
        std::thread::sleep(Duration::from_millis(3));
        replace_file(&dir, "wrangler.toml", &wrangler(&last));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body = server.get("/", &[]).text();
            if body == last {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: still serving {body:?}, not {last:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
