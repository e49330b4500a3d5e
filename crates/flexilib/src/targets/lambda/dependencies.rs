//! A function's dependencies, installed as `sam build` installs them, for
//! functions of a managed runtime (`runtime=`, a SAM `Runtime`): a `requirements.txt`
//! beside a Python handler is installed with `pip install --target`, a
//! `package.json` beside a Node handler with `npm ci` (when a
//! `package-lock.json` is there too; `npm install` otherwise; not when the
//! directory already has `node_modules`). Each installation goes into a
//! cache directory keyed by a hash of those files (and the interpreter), so
//! it happens once, on the first cold start that needs it, and again when
//! the files change. The instance then gets `PYTHONPATH` / `NODE_PATH`.
//!
//! Installing runs on the control runtime: a request that gives up waiting
//! does not stop it. A failed installation is logged with the installer's
//! last lines and fails the invocation; the next cold start tries again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::OnceCell;

use super::logs;
use crate::config::{LambdaSpec, Language};

/// Where installations are cached (`LAMBDA_CACHE_DIR`), set at start.
static CACHE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Installations by cache key: running or done.
type Installs = Mutex<HashMap<String, Arc<OnceCell<Result<PathBuf, String>>>>>;

fn installs() -> &'static Installs {
    static INSTALLS: OnceLock<Installs> = OnceLock::new();
    INSTALLS.get_or_init(Installs::default)
}

/// Sets the cache directory (the worker, from its settings).
pub fn set_cache_dir(dir: PathBuf) {
    let _ = CACHE_DIR.set(dir);
}

/// The cache directory: `LAMBDA_CACHE_DIR`, else `$XDG_CACHE_HOME/flexilib`,
/// `$HOME/.cache/flexilib`, or `flexilib-cache` in the temporary directory.
pub fn default_cache_dir() -> PathBuf {
    let from = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_CACHE_HOME")
        .map(|dir| dir.join("flexilib"))
        .or_else(|| from("HOME").map(|home| home.join(".cache/flexilib")))
        .unwrap_or_else(|| std::env::temp_dir().join("flexilib-cache"))
}

fn cache_dir() -> PathBuf {
    CACHE_DIR.get().cloned().unwrap_or_else(default_cache_dir)
}

/// What a function's directory asks to have installed.
struct Manifest {
    client: Language,
    /// The file that names the dependencies.
    file: &'static str,
    /// Its text, and the lock file's if any.
    contents: Vec<u8>,
    locked: bool,
}

fn manifest(spec: &LambdaSpec) -> Option<Manifest> {
    let client = spec.language?;
    let read = |name: &str| std::fs::read(spec.dir.join(name)).ok();
    match client {
        Language::Python => Some(Manifest {
            client,
            file: "requirements.txt",
            contents: read("requirements.txt")?,
            locked: false,
        }),
        Language::Node => {
            if spec.dir.join("node_modules").is_dir() {
                return None;
            }
            let mut contents = read("package.json")?;
            let lock = read("package-lock.json");
            let locked = lock.is_some();
            contents.extend(lock.unwrap_or_default());
            Some(Manifest {
                client,
                file: "package.json",
                contents,
                locked,
            })
        }
    }
}

/// FNV-1a, 64 bits: a stable key for the cache (not a security boundary:
/// the cache belongs to the server's user).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The environment an instance of `spec` needs for its installed
/// dependencies (nothing when it has none), installing them first if they
/// are not in the cache.
pub async fn prepare(spec: &LambdaSpec) -> Result<Vec<(String, String)>, String> {
    let Some(manifest) = manifest(spec) else {
        return Ok(Vec::new());
    };
    let kind = match manifest.client {
        Language::Python => "python",
        Language::Node => "node",
    };
    let key = format!(
        "{kind}-{:016x}",
        fnv1a(&[
            spec.program.as_os_str().as_encoded_bytes(),
            &manifest.contents
        ])
    );
    let target = cache_dir().join(&key);
    let cell = Arc::clone(installs().lock().entry(key.clone()).or_default());
    let installed = cell
        .get_or_init(|| async {
            if target.is_dir() {
                return Ok(target.clone());
            }
            let job = install(spec.clone(), manifest.file, manifest.locked, target.clone());
            crate::control::handle()
                .spawn(job)
                .await
                .unwrap_or_else(|error| Err(format!("the installation stopped: {error}")))
        })
        .await
        .clone();
    let dir = match installed {
        Ok(dir) => dir,
        Err(message) => {
            installs().lock().remove(&key);
            return Err(message);
        }
    };
    Ok(match manifest.client {
        Language::Python => {
            let mut path = dir.into_os_string();
            if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
                path.push(":");
                path.push(existing);
            }
            vec![("PYTHONPATH".into(), path.to_string_lossy().into_owned())]
        }
        Language::Node => vec![(
            "NODE_PATH".into(),
            dir.join("node_modules").to_string_lossy().into_owned(),
        )],
    })
}

/// Installs `file`'s dependencies into `target` (through a directory
/// beside it, renamed into place when complete).
async fn install(
    spec: LambdaSpec,
    file: &str,
    locked: bool,
    target: PathBuf,
) -> Result<PathBuf, String> {
    let started = Instant::now();
    let name = &spec.name;
    let partial = target.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    logs::line(
        name,
        &format!(
            "installing dependencies from {file} into {}",
            target.display()
        ),
    );
    let mut command = match spec.language {
        Some(Language::Node) => {
            for copied in ["package.json", "package-lock.json"] {
                let from = spec.dir.join(copied);
                if from.is_file() {
                    std::fs::copy(&from, partial.join(copied))
                        .map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
                }
            }
            let mut npm = tokio::process::Command::new("npm");
            npm.arg(if locked { "ci" } else { "install" })
                .args(["--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&partial);
            npm
        }
        _ => {
            let mut pip = tokio::process::Command::new(&spec.program);
            pip.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--root-user-action=ignore",
                "--target",
            ])
            .arg(&partial)
            .arg("-r")
            .arg(spec.dir.join(file))
            .current_dir(&spec.dir);
            pip
        }
    };
    // Marked as the server's helper: the reaper, which ends unmarked
    // children of the server, leaves it and its own children alone.
    let mark = super::reaper::helper_mark();
    command
        .env(crate::process_tree::INSTANCE_MARK, &mark)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false);
    let output = command
        .output()
        .await
        .map_err(|e| format!("cannot run the installer: {e}"));
    super::reaper::helper_ended(&mark);
    let failure = match output {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "{} ({})",
            last_lines(&output.stderr, &output.stdout),
            output.status
        )),
        Err(message) => Some(message),
    };
    if let Some(failure) = failure {
        let _ = std::fs::remove_dir_all(&partial);
        let message = format!("installing dependencies from {file} failed: {failure}");
        logs::line(name, &message);
        return Err(message);
    }
    if let Err(error) = std::fs::rename(&partial, &target) {
        let _ = std::fs::remove_dir_all(&partial);
        // Another server installed the same set meanwhile.
        if !target.is_dir() {
            return Err(format!("cannot move the installation into place: {error}"));
        }
    }
    logs::line(
        name,
        &format!(
            "dependencies installed in {:.2} s",
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(target)
}

/// The installer's last few lines of output, on one line.
fn last_lines(stderr: &[u8], stdout: &[u8]) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_follow_the_content() {
        assert_eq!(fnv1a(&[b"a", b"b"]), fnv1a(&[b"a", b"b"]));
        assert_ne!(fnv1a(&[b"a", b"b"]), fnv1a(&[b"ab", b""]));
        assert_ne!(fnv1a(&[b"six==1"]), fnv1a(&[b"six==2"]));
        assert_eq!(last_lines(b"", b"x\n\ny\nz\nw\n"), "y / z / w");
    }
}
