//! Private directories of a flexilib process: `flexilib-PID-N`, mode 0700,
//! in `/dev/shm` (memory) unless that is missing or mounted `noexec`, else
//! in the temporary directory. A worker keeps its library copies in one;
//! the supervisor keeps the last good config in one. The pid in the name
//! lets the supervisor remove what a crashed worker left.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

/// Where private directories are made.
pub fn base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && crate::os::allows_exec(shm) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Creates a fresh private directory of this process in `base`: never one
/// that already exists, which someone else could own.
pub fn create_in(base: &Path) -> std::io::Result<PathBuf> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let name = format!(
            "flexilib-{}-{}",
            std::process::id(),
            nonce.wrapping_add(attempt)
        );
        let dir = base.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "cannot create a private directory",
    ))
}

/// Removes the private directories of process `pid` (a worker that died
/// without cleaning up).
pub fn remove_all_of(pid: u32) {
    let prefix = format!("flexilib-{pid}-");
    for base in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
