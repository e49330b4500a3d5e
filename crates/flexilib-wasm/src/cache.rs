//! Loading a component: read the file, then the compiled artifact from the
//! cache directory if one was made for these bytes by a compatible engine,
//! else compile it (`Engine::precompile_component`) and store the artifact
//! for the next start or reload (`Component::deserialize_file`).
//!
//! The key is the SHA-256 of the component's bytes and the engine's
//! compatibility hash (Wasmtime's version and every setting that shapes
//! code). Loading native code from a file is only safe if nobody else
//! could have written it, so the cache is used only when the directory
//! belongs to this user and no one else may write to it (it is created
//! with mode 0700); otherwise components are compiled every time, and the
//! log says why.

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Largest component file read (the whole file is held while compiling).
const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}", path = .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a regular file, or too big.
    #[error("{path}: {message}", path = .path.display())]
    NotAComponent {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Wasmtime could not compile it.
    #[error("{path} does not compile: {message}", path = .path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// Wasmtime's message.
        message: String,
    },
}

/// How a component was obtained, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// From the cache.
    Cached,
    /// Compiled now (and stored if the cache is usable).
    Compiled,
}

/// A loaded component and how it was obtained.
pub struct Loaded {
    /// The component.
    pub component: Component,
    /// Cached or compiled.
    pub source: Source,
    /// Time it took, in ms.
    pub ms: f64,
    /// Why the cache was not used, if it was not.
    pub cache_note: Option<String>,
}

/// Reads `path` (a regular file, opened without blocking on a FIFO).
fn read_component(path: &Path) -> Result<Vec<u8>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    let not = |message: String| LoadError::NotAComponent {
        path: path.to_path_buf(),
        message,
    };
    if !metadata.is_file() {
        return Err(not("not a regular file".into()));
    }
    if metadata.len() > MAX_COMPONENT_BYTES {
        return Err(not(format!(
            "{} bytes, more than the {} MiB a component may have",
            metadata.len(),
            MAX_COMPONENT_BYTES >> 20
        )));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_COMPONENT_BYTES)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    Ok(bytes)
}

/// The artifact's file name for `bytes` compiled by `engine`.
fn artifact_name(engine: &Engine, bytes: &[u8]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}-{:016x}.cwasm", hasher.finish())
}

/// Makes `dir` (mode 0700) and checks that only this user can write to it.
fn private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let metadata =
        std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if metadata.uid() != uid {
        return Err(format!("{} belongs to another user", dir.display()));
    }
    if metadata.permissions().mode() & 0o022 != 0 {
        return Err(format!("{} is writable by others", dir.display()));
    }
    Ok(())
}

/// Loads the component at `path`, through the cache in `cache_dir`.
pub fn load(engine: &Engine, path: &Path, cache_dir: Option<&Path>) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    let bytes = read_component(path)?;
    let compile_error = |e: wasmtime::Error| LoadError::Compile {
        path: path.to_path_buf(),
        message: format!("{e:#}"),
    };
    let cache = match cache_dir {
        None => Err("the cache is off (cache=off)".to_string()),
        Some(dir) => private_dir(dir).map(|()| dir.join(artifact_name(engine, &bytes))),
    };
    let mut cache_note = None;
    match &cache {
        Ok(artifact) if artifact.is_file() => {
            // SAFETY: the artifact is in a directory only this user can
            // write to, and was written (whole, then renamed into place) by
            // `precompile_component` of an engine whose compatibility hash
            // is in its name; Wasmtime checks its header and version too.
            match unsafe { Component::deserialize_file(engine, artifact) } {
                Ok(component) => {
                    return Ok(Loaded {
                        component,
                        source: Source::Cached,
                        ms: started.elapsed().as_secs_f64() * 1000.0,
                        cache_note: None,
                    })
                }
                Err(e) => cache_note = Some(format!("cached artifact refused, recompiling: {e:#}")),
            }
        }
        Ok(_) => {}
        Err(why) => cache_note = Some(why.clone()),
    }
    let compiled = engine.precompile_component(&bytes).map_err(compile_error)?;
    // SAFETY: `compiled` was produced just now by this engine's
    // `precompile_component`.
    let component = unsafe { Component::deserialize(engine, &compiled) }.map_err(compile_error)?;
    if let Ok(artifact) = &cache {
        if let Err(e) = store(artifact, &compiled) {
            cache_note = Some(format!("cannot store the compiled artifact: {e}"));
        }
    }
    Ok(Loaded {
        component,
        source: Source::Compiled,
        ms: started.elapsed().as_secs_f64() * 1000.0,
        cache_note,
    })
}

/// Writes `bytes` aside and renames them to `artifact`, so a reader never
/// sees half an artifact.
fn store(artifact: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let staged = artifact.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&staged, bytes)?;
    std::fs::rename(&staged, artifact).inspect_err(|_| {
        let _ = std::fs::remove_file(&staged);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_are_made_and_checked() {
        let base = std::env::temp_dir().join(format!("flexilib-wasm-cache-{}", std::process::id()));
        let dir = base.join("a/b");
        assert_eq!(private_dir(&dir), Ok(()));
        let mode = std::fs::metadata(&dir).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o700));
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        assert!(private_dir(&dir).is_err_and(|e| e.contains("writable by others")));
        let _ = std::fs::remove_dir_all(&base);
    }
}
