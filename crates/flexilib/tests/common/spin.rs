//! Spin applications (`wasm:PATH/spin.toml`): the Python component of
//! `examples/spin-app`, built with componentize-py by
//! `scripts/build-spin-app.sh` (which keeps a build whose sources have not
//! changed), and compiled once per test binary into the shared compile
//! cache before the tests start their servers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::common::{workspace, Server, TempDir};
use crate::wasm;

/// Time to compile the 18 MB component (the first time; then it comes from
/// the compile cache).
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(600);

/// The example's component built for `world` (`app`, into
/// `target/spin-app/app.wasm`, or `app-with-sqlite`, into
/// `target/wasm-test/spin-WORLD.wasm`), compiled
/// into the shared compile cache, once per test binary.
pub fn guest(world: &str) -> PathBuf {
    type Built = Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>;
    static BUILT: OnceLock<Built> = OnceLock::new();
    wasm::ensure_built();
    let once = BUILT
        .get_or_init(Built::default)
        .lock()
        .expect("guest table")
        .entry(world.to_string())
        .or_default()
        .clone();
    once.get_or_init(|| {
        // `app` where the example's manifest looks for it (the script's
        // default), so that the example is served as it is.
        let out = if world == "app" {
            workspace().join("target/spin-app/app.wasm")
        } else {
            wasm::test_dir().join(format!("spin-{world}.wasm"))
        };
        let started = std::time::Instant::now();
        let output = Command::new(workspace().join("scripts/build-spin-app.sh"))
            .arg(&out)
            .arg(world)
            .current_dir(workspace())
            .output()
            .expect("run scripts/build-spin-app.sh");
        assert!(
            output.status.success(),
            "building {} failed:\n{}",
            out.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!(
            "{} ready in {:.1} s",
            out.display(),
            started.elapsed().as_secs_f64()
        );
        warm_cache(&out);
        out
    })
    .clone()
}

/// Loads `component` in a server once, so that its compiled artifact is in
/// the shared cache before tests start servers of their own.
fn warm_cache(component: &Path) {
    let dir = TempDir::new("spin-warm");
    dir.write(
        "spin.toml",
        &format!(
            "spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n[component.c]\nsource = \"{}\"\n",
            component.display()
        ),
    );
    let config = dir.write("proxy.ini", "/ = wasm:spin.toml\n");
    let server = wasm::server(&config).start();
    let line = server.stderr.wait_for(COMPILE_TIMEOUT, |l| {
        l.contains("component ready") || l.contains("cannot link")
    });
    assert!(
        line.is_some(),
        "{} was not loaded:\n{}",
        component.display(),
        server.stderr.snapshot().join("\n")
    );
}

/// Waits until the server's Spin application on `route` is ready.
pub fn wait_ready(server: &Server, route: &str) {
    let ready = format!("[{route}] Spin application");
    let line = server
        .stderr
        .wait_for(COMPILE_TIMEOUT, |l| l.contains(&ready));
    assert!(
        line.is_some(),
        "{route} never became ready:\n{}",
        server.stderr.snapshot().join("\n")
    );
}
