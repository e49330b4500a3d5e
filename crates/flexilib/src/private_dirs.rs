//! Private directories of a flexilib process: `flexilib-PID-N`, mode 0700,
//! in `/dev/shm` (memory) unless that is missing or mounted `noexec`, else
//! in the temporary directory. A worker keeps its library copies in one;
//! the supervisor keeps the last good config in one.
//!
//! A process that ends normally removes its own, and the supervisor removes
//! those of a worker that died. A process killed outright (SIGKILL, the
//! machine's OOM killer) leaves them behind, so a server starting removes
//! the ones whose owner is gone: named after a pid that no longer runs,
//! owned by this user, and not locked. Each process holds an exclusive
//! `flock` on its directories while it lives, so one of a live server in
//! another pid namespace (whose pid means nothing here) is never taken for
//! a dead one.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

/// A private directory of this process, locked while this value lives.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    /// The directory itself, opened and `flock`ed.
    _lock: File,
}

impl PrivateDir {
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where private directories are made.
pub fn base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && crate::os::allows_exec(shm) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Creates a fresh private directory of this process in `base` (never one
/// that already exists, which someone else could own) and locks it.
pub fn create_in(base: &Path) -> std::io::Result<PrivateDir> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let name = format!(
            "flexilib-{}-{}",
            std::process::id(),
            nonce.wrapping_add(attempt)
        );
        let path = base.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {
                let lock = File::open(&path)?;
                crate::os::try_lock_exclusive(&lock)?;
                return Ok(PrivateDir { path, _lock: lock });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "cannot create a private directory",
    ))
}

/// The places private directories may be in.
fn bases() -> [PathBuf; 2] {
    [PathBuf::from("/dev/shm"), std::env::temp_dir()]
}

/// The pid in a private directory's name (`flexilib-PID-N`).
fn owner_pid(name: &str) -> Option<u32> {
    let (pid, nonce) = name.strip_prefix("flexilib-")?.split_once('-')?;
    if nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes the private directories of process `pid` (a worker that died
/// without cleaning up).
pub fn remove_all_of(pid: u32) {
    for base in bases() {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            if owner_pid(&entry.file_name().to_string_lossy()) == Some(pid) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Removes the private directories left by processes that are gone (see
/// the module documentation); returns how many.
pub fn remove_stale() -> usize {
    let uid = crate::os::effective_uid();
    let mut removed = 0;
    for base in bases() {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = owner_pid(&name.to_string_lossy()) else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let path = entry.path();
            // Not following a symbolic link: only a real directory of ours.
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_dir() || meta.uid() != uid {
                continue;
            }
            let Ok(lock) = File::open(&path) else {
                continue;
            };
            if !matches!(crate::os::try_lock_exclusive(&lock), Ok(true)) {
                continue;
            }
            match std::fs::remove_dir_all(&path) {
                Ok(()) => removed += 1,
                Err(error) => {
                    tracing::debug!(dir = %path.display(), %error, "cannot remove a stale private directory")
                }
            }
        }
    }
    removed
}

/// [`remove_stale`], logged: at the start of a server.
pub fn remove_stale_and_log() {
    let removed = remove_stale();
    if removed > 0 {
        tracing::info!(removed, "removed private directories of dead processes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_their_owner() {
        assert_eq!(owner_pid("flexilib-123-456"), Some(123));
        assert_eq!(owner_pid("flexilib-test-123-std-0"), None);
        assert_eq!(owner_pid("flexilib-123-"), None);
        assert_eq!(owner_pid("flexilib-123-4x"), None);
        assert_eq!(owner_pid("other-123-456"), None);
    }

    #[test]
    fn a_locked_directory_is_not_stale_even_if_its_pid_is_gone() {
        let base = create_in(&std::env::temp_dir()).expect("base");
        // A directory named after a pid that cannot exist, but locked.
        let path = base.path().join("flexilib-4000000000-1");
        std::fs::create_dir(&path).expect("create");
        let lock = File::open(&path).expect("open");
        assert!(crate::os::try_lock_exclusive(&lock).expect("lock"));
        let other = File::open(&path).expect("open again");
        assert!(!crate::os::try_lock_exclusive(&other).expect("try"));
        drop(lock);
        assert!(crate::os::try_lock_exclusive(&other).expect("free now"));
        let _ = std::fs::remove_dir_all(base.path());
    }
}
