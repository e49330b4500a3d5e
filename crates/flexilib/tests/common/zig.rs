//! Zig compilers installed by `scripts/install-zig.sh`, and building Zig
//! handler libraries with them (once per test binary, cached under
//! `target/zig-test/`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::common::workspace;

/// The original FlexiLib's Zig, for libraries that export `zigInit`.
pub const ORIGINAL: &str = "0.13.0";
/// The Zig the SDK in `sdk/zig` is written for.
pub const CURRENT: &str = "0.17.1";

/// The `zig` executable of `version`: `$FLEXILIB_ZIG_<version with _>`
/// (e.g. `FLEXILIB_ZIG_0_13_0`), else `zig-VERSION/bin/zig` in
/// `$FLEXILIB_TOOLS_DIR` (default `target/tools`; a relative path is taken
/// from the repository root, as `scripts/install-zig.sh` does). Panics, naming the
/// install script, when it is missing or reports another version.
pub fn zig(version: &str) -> PathBuf {
    let var = format!("FLEXILIB_ZIG_{}", version.replace('.', "_"));
    let path = match std::env::var_os(&var) {
        Some(path) => PathBuf::from(path),
        // Relative to the repository root, as in the install script.
        None => workspace()
            .join(std::env::var_os("FLEXILIB_TOOLS_DIR").unwrap_or("target/tools".into()))
            .join(format!("zig-{version}/bin/zig")),
    };
    let reported = Command::new(&path)
        .arg("version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    match reported {
        Some(v) if v == version => path,
        Some(v) => panic!(
            "{} is Zig {v}, not {version}: run scripts/install-zig.sh or fix ${var}",
            path.display()
        ),
        None => panic!(
            "Zig {version} not found at {}: run scripts/install-zig.sh \
             (or set ${var} to a zig {version} executable)",
            path.display()
        ),
    }
}

/// Builds a shared library `lib<name>.so` with Zig `version`; `args` name
/// the sources (`zig build-lib` arguments after the options). Built once
/// per test binary; later calls return the same file.
pub fn build_library(version: &str, name: &str, args: &[OsString]) -> PathBuf {
    type Built = Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>;
    static BUILT: OnceLock<Built> = OnceLock::new();
    let once = BUILT
        .get_or_init(Built::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(format!("{version}/{name}"))
        .or_default()
        .clone();
    // Different libraries build in parallel; callers of the same one wait.
    once.get_or_init(|| compile(version, name, args)).clone()
}

fn compile(version: &str, name: &str, args: &[OsString]) -> PathBuf {
    let zig = zig(version);
    let dir = workspace().join("target/zig-test").join(version);
    std::fs::create_dir_all(&dir).expect("create target/zig-test");
    let out = dir.join(format!("lib{name}.so"));
    let started = Instant::now();
    let output = Command::new(&zig)
        .args(["build-lib", "-dynamic", "-O", "Debug"])
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--global-cache-dir")
        .arg(dir.join("global-cache"))
        .arg(format!("-femit-bin={}", out.display()))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run zig");
    assert!(
        output.status.success(),
        "zig {version} failed to build {name}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "built {} with zig {version} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    out
}

/// Runs `zig test` of `version` with `args`; panics with its output when
/// a test fails.
pub fn run_tests(version: &str, args: &[OsString]) {
    let dir = workspace().join("target/zig-test").join(version);
    let output = Command::new(zig(version))
        .arg("test")
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--global-cache-dir")
        .arg(dir.join("global-cache"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run zig test");
    assert!(
        output.status.success(),
        "zig {version} test failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A source path in the repository, as an argument.
pub fn source(relative: &str) -> OsString {
    let path: &Path = relative.as_ref();
    workspace().join(path).into_os_string()
}
