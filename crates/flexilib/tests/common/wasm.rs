//! WebAssembly routes: the runtime library (`crates/flexilib-wasm`) and the
//! guest components of `examples/wasm-hello`, built from their C source
//! with the builder (`examples/wasm-hello/builder`) and Zig's C compiler.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use crate::common::{build_dir, workspace, ServerBuilder, TempDir};
use crate::zig;

/// Brings the runtime library and the guest builder up to date: `cargo
/// build --workspace` (what the test command runs first, so usually
/// nothing to do; the same packages and features, so nothing is rebuilt
/// twice), once per test binary.
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace())
            .args(["build", "--workspace", "--quiet"]);
        if build_dir().ends_with("release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "cargo build --workspace failed");
        for file in ["libflexilib_wasm.so", "wasm-hello-build"] {
            let path = build_dir().join(file);
            assert!(
                path.exists(),
                "{} is missing after cargo build",
                path.display()
            );
        }
    });
}

/// Where guests and the shared compile cache go: `target/wasm-test`.
pub fn test_dir() -> PathBuf {
    let dir = build_dir().join("../wasm-test");
    std::fs::create_dir_all(&dir).expect("create target/wasm-test");
    dir
}

/// The hello guest (`examples/wasm-hello/hello.c`) built with the C
/// `defines` (`-DNAME=VALUE`) into `target/wasm-test/NAME.wasm`, once per
/// test binary.
pub fn guest(name: &str, defines: &[&str]) -> PathBuf {
    type Built = Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>;
    static BUILT: OnceLock<Built> = OnceLock::new();
    ensure_built();
    let once = BUILT
        .get_or_init(Built::default)
        .lock()
        .expect("guest table")
        .entry(name.to_string())
        .or_default()
        .clone();
    once.get_or_init(|| {
        let out = test_dir().join(format!("{name}.wasm"));
        build_guest(&out, defines);
        out
    })
    .clone()
}

/// Builds the hello guest with `defines` into `out`.
pub fn build_guest(out: &Path, defines: &[&str]) {
    let started = std::time::Instant::now();
    let output = Command::new(build_dir().join("wasm-hello-build"))
        .arg("--zig")
        .arg(zig::zig(zig::CURRENT))
        .arg("--out")
        .arg(out)
        .args(defines)
        .arg(workspace().join("examples/wasm-hello/hello.c"))
        .output()
        .expect("run wasm-hello-build");
    assert!(
        output.status.success(),
        "building {} failed:\n{}",
        out.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "built {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
}

/// A temp dir with `proxy.ini` holding `rules` (`{hello}` stands for the
/// hello guest's path).
pub fn config(tag: &str, rules: &str) -> (TempDir, PathBuf) {
    let hello = guest("hello", &[]);
    let dir = TempDir::new(tag);
    let config = dir.write(
        "proxy.ini",
        &rules.replace("{hello}", &hello.display().to_string()),
    );
    (dir, config)
}

/// A server for `config`, sharing the compile cache in `target/wasm-test`
/// (so each component compiles once per test run, not per server).
pub fn server(config: &Path) -> ServerBuilder {
    ServerBuilder::new(config).env(
        "XDG_CACHE_HOME",
        &test_dir().join("cache").display().to_string(),
    )
}

/// How long a server may take to compile the JavaScript guest (about 13 MB
/// of SpiderMonkey: 10-30 s in a debug build on 2 cores) the first time;
/// then it comes from the compile cache.
pub const JS_COMPILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The JavaScript guest of `examples/wasm-js`, built with componentize-js
/// by its `build.sh` into `target/wasm-test/js-hello.wasm` (a build whose
/// sources have not changed is kept) and compiled once into the shared
/// compile cache, once per test binary, so that the servers of the tests
/// load it in well under a second.
pub fn js_guest() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            ensure_built();
            let out = test_dir().join("js-hello.wasm");
            let started = std::time::Instant::now();
            let output = Command::new(workspace().join("examples/wasm-js/build.sh"))
                .arg(&out)
                .current_dir(workspace())
                .output()
                .expect("run examples/wasm-js/build.sh");
            assert!(
                output.status.success(),
                "building {} failed (scripts/install-wasm-js-tools.sh installs componentize-js and jco from npm):\n{}",
                out.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            eprintln!(
                "{} ready in {:.1} s",
                out.display(),
                started.elapsed().as_secs_f64()
            );
            // Compile it into the shared cache before the tests' servers start.
            let dir = TempDir::new("wasm-js-warm");
            let config = dir.write("proxy.ini", &format!("/ = wasm:{}\n", out.display()));
            let server = server(&config).start();
            let line = server.stderr.wait_for(JS_COMPILE_TIMEOUT, |l| {
                l.contains("component ready") || l.contains("cannot")
            });
            assert!(
                line.as_deref().is_some_and(|l| l.contains("component ready")),
                "{} was not loaded:\n{}",
                out.display(),
                server.stderr.snapshot().join("\n")
            );
            out
        })
        .clone()
}
