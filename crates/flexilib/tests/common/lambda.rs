//! Lambda test support: AWS's runtime clients, as installed by
//! scripts/install-lambda-clients.sh (the tests fail, naming it, when they
//! are missing), and servers with Lambda routes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{workspace, Server, ServerBuilder, TempDir};

const INSTALL: &str = "run scripts/install-lambda-clients.sh (see README, \"Lambda functions\")";

/// The `bootstrap` of examples/lambda-rust, built with AWS's `lambda_http`.
pub fn rust_bootstrap() -> PathBuf {
    let path = workspace().join("target/lambda-rust/release/bootstrap");
    assert!(path.exists(), "{} is missing: {INSTALL}", path.display());
    path
}

/// The bin directory of the venv holding AWS's `awslambdaric`.
pub fn python_bin() -> PathBuf {
    let bin = workspace().join("target/lambda-venv/bin");
    let ok = std::process::Command::new(bin.join("python3"))
        .args(["-c", "import awslambdaric"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        ok,
        "awslambdaric is not installed in {}: {INSTALL}",
        bin.display()
    );
    bin
}

/// `PATH` with the venv first, so `python3` is the one with awslambdaric.
pub fn path_with_python() -> String {
    format!(
        "{}:{}",
        python_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The Python example function's source.
pub fn python_example() -> String {
    std::fs::read_to_string(workspace().join("examples/lambda-python/app.py"))
        .expect("read examples/lambda-python/app.py")
}

/// Starts a server for `config` (written into `dir`), with the venv in PATH
/// and the Invoke API on a free loopback port ([`Server::invoke_client`]).
pub fn start(dir: &TempDir, config: &str) -> Server {
    builder(dir, config).start()
}

/// The builder [`start`] uses, to add settings.
pub fn builder(dir: &TempDir, config: &str) -> ServerBuilder {
    let path = dir.write("proxy.ini", config);
    ServerBuilder::new(&path)
        .env("PATH", &path_with_python())
        .env("INVOKE_API_ADDRESS", "127.0.0.1:0")
}

/// Copies the Rust example into `dir` (so that it can be replaced there).
pub fn copy_bootstrap(dir: &Path, name: &str) -> PathBuf {
    let target = dir.join(name);
    std::fs::copy(rust_bootstrap(), &target).expect("copy bootstrap");
    target
}

/// Replaces `path` atomically with a copy of the Rust example (a new file
/// and inode, as a build or a deploy makes).
pub fn replace_bootstrap(path: &Path) {
    let staging = path.with_extension("new");
    std::fs::copy(rust_bootstrap(), &staging).expect("copy bootstrap");
    std::fs::rename(&staging, path).expect("rename bootstrap");
}

/// Writes `contents` to `dir/name` atomically (write, then rename).
pub fn write_atomically(dir: &TempDir, name: &str, contents: &str) {
    let staging = dir.path().join(format!(".{name}.tmp"));
    std::fs::write(&staging, contents).expect("write staging file");
    std::fs::rename(&staging, dir.path().join(name)).expect("rename");
}

/// True while process `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits up to `timeout` for `pid` to be gone.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !process_alive(pid)
}

/// Process ids of `parent`'s children.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

/// The worker's pid, from the supervisor's `worker started pid=N` line (the
/// `n`-th such line, counting from 0).
pub fn worker_pid(server: &Server, n: usize) -> u32 {
    let line = server
        .stderr
        .wait_for_nth(Duration::from_secs(10), n, |l| l.contains("worker started"))
        .expect("worker started line");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|pid| pid.parse().ok())
        .expect("pid in the worker started line")
}

/// cargo-lambda's command (from PyPI, in the venv).
pub fn cargo_lambda() -> PathBuf {
    let path = workspace().join("target/lambda-venv/bin/cargo-lambda");
    assert!(path.exists(), "{} is missing: {INSTALL}", path.display());
    path
}

/// AWS's Node.js runtime interface client, installed into examples/lambda-node.
pub fn node_ric() -> PathBuf {
    let path = workspace().join("examples/lambda-node/node_modules/.bin/aws-lambda-ric");
    assert!(path.exists(), "{} is missing: {INSTALL}", path.display());
    path
}

/// The Node example function's directory.
pub fn node_example_dir() -> PathBuf {
    workspace().join("examples/lambda-node")
}
