//! Private copies of library files, so that every generation is loaded from
//! a file nobody else writes to.
//!
//! `dlopen` of a path that is already loaded returns the old handle (glibc
//! matches by name and inode), and overwriting a mapped `.so` in place
//! crashes the process with SIGBUS. So each load copies the configured file
//! to a unique name in a private directory (`/dev/shm` when it exists),
//! `dlopen`s the copy, and deletes it at once: the mapping keeps the data,
//! and the configured file can be rewritten, renamed or deleted freely.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileVersion {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
}

impl FileVersion {
    /// The version of the file at `path` now.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }
}

/// A copy of a library file, deleted when dropped.
#[derive(Debug)]
pub struct PrivateCopy {
    path: PathBuf,
}

impl PrivateCopy {
    /// Copies `source` to a fresh name in the private directory.
    pub fn of(source: &Path) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = source
            .file_name()
            .map_or_else(|| "library.so".into(), |n| n.to_string_lossy().into_owned());
        let path = private_dir()?.join(format!("{}-{name}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let copy = Self { path };
        std::fs::copy(source, &copy.path)?;
        Ok(copy)
    }

    /// Where the copy is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The private directory (mode 0700), created on first use.
fn private_dir() -> std::io::Result<&'static Path> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir);
    }
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("flexilib-{}", std::process::id()));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    Ok(DIR.get_or_init(|| dir))
}

/// Removes the private directory (at exit; copies are deleted as soon as loaded).
pub fn remove_private_dir() {
    if let Ok(dir) = private_dir() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
