//! What identifies one version of a file on disk (device, inode, size,
//! modification time), so a watcher can tell a replaced or rewritten file
//! from the one it loaded: libraries, their instances' dependencies, Lambda
//! executables.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileVersion {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
}

impl FileVersion {
    /// The version of the file at `path` now, unless it may have changed
    /// since `since` (its inode changed then or later: written, or renamed
    /// into place; with the kernel's coarse clock, within
    /// [`CHANGE_MARGIN`] before too): `None`, a version that no file
    /// matches, so whoever read it reads it again.
    pub fn settled_since(path: &Path, since: std::time::SystemTime) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            );
        if changed + CHANGE_MARGIN >= since {
            return None;
        }
        Self::of(path).ok()
    }

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

/// How much earlier than the real time the kernel may stamp a change
/// (file times come from a clock that advances once per tick).
pub const CHANGE_MARGIN: std::time::Duration = std::time::Duration::from_millis(20);
