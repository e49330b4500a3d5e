//! Private copies of library files, so that every generation is loaded from
//! a file nobody else writes to.
//!
//! `dlopen` of a path that is already loaded returns the old handle (glibc
//! matches by name and inode), and overwriting a mapped `.so` in place
//! crashes the process with SIGBUS. So each load copies the configured file
//! to a unique name in a private directory (`/dev/shm` when it exists),
//! `dlopen`s the copy, and deletes it at once: the mapping keeps the data,
//! and the configured file can be rewritten, renamed or deleted freely.

use parking_lot::Mutex;
use std::io::Read;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::elf::{self, ElfProblem};
use crate::private_dirs::PrivateDir;

/// A copy of a library file, deleted when dropped.
#[derive(Debug)]
pub struct PrivateCopy {
    path: PathBuf,
}

/// Largest library file that is loaded. Each load copies the file into
/// `/dev/shm`, which is memory: a bigger file is refused before anything is
/// copied.
pub const MAX_LIBRARY_BYTES: u64 = 512 << 20;

/// Why a library file could not be copied for loading.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Reading the file or writing the copy failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is over [`MAX_LIBRARY_BYTES`].
    #[error("too large: {size} bytes (the limit is {} MiB)", MAX_LIBRARY_BYTES >> 20)]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// The file is not a (complete) library.
    #[error("{0}")]
    Elf(#[from] ElfProblem),
}

impl PrivateCopy {
    /// Copies `source` to a fresh name in the private directory. Before
    /// copying, checks that `source` is a regular file (a FIFO would block),
    /// at most [`MAX_LIBRARY_BYTES`] long, starting with a 64-bit ELF
    /// header; after, that the copy is a complete ELF file: `dlopen` of a
    /// file cut short (still being written) can map segments past its end,
    /// and the first touch of those pages kills the process with SIGBUS.
    pub fn of(source: &Path, copies: &CopyDir) -> Result<Self, CopyError> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let from = crate::files::open_regular(source)?;
        let size = from.metadata()?.len();
        if size > MAX_LIBRARY_BYTES {
            return Err(CopyError::TooLarge { size });
        }
        let mut first = [0u8; elf::HEADER_BYTES];
        let mut have = 0;
        while have < first.len() {
            match from.read_at(&mut first[have..], have as u64)? {
                0 => break,
                n => have += n,
            }
        }
        elf::check_header(&first[..have])?;

        let name = source
            .file_name()
            .map_or_else(|| "library.so".into(), |n| n.to_string_lossy().into_owned());
        let path = copies
            .get_or_create()?
            .join(format!("{}-{name}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let mut to = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)?;
        let copy = Self { path };
        // The file may grow while it is copied: never copy past the limit.
        let copied = std::io::copy(&mut Read::take(&from, MAX_LIBRARY_BYTES + 1), &mut to)?;
        if copied > MAX_LIBRARY_BYTES {
            return Err(CopyError::TooLarge { size: copied });
        }
        elf::check_complete(copied, |offset, buffer| to.read_exact_at(buffer, offset))?;
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

/// The private directory of the server's library copies (owned by the
/// server, shared by its libraries), created once, when first needed,
/// however many threads ask for it at the same moment (two libraries
/// loading for the first time at once must not each create one: the
/// loser's would be left behind).
#[derive(Debug, Default)]
pub struct CopyDir {
    lazy: LazyDir,
}

impl CopyDir {
    /// The directory (created in the private-directory base on first use).
    fn get_or_create(&self) -> std::io::Result<&Path> {
        self.lazy
            .get_or_create(|| crate::private_dirs::create_in(&crate::private_dirs::base()))
    }

    /// Removes the directory, if it was created (at exit; copies are
    /// deleted as soon as loaded).
    pub fn remove(&self) {
        if let Some(dir) = self.lazy.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A directory created once, by whichever caller comes first.
#[derive(Debug)]
struct LazyDir {
    dir: OnceLock<PrivateDir>,
    /// Held while creating; a failed creation is retried by the next caller.
    creating: Mutex<()>,
}

impl Default for LazyDir {
    fn default() -> Self {
        Self::new()
    }
}

impl LazyDir {
    const fn new() -> Self {
        Self {
            dir: OnceLock::new(),
            creating: Mutex::new(()),
        }
    }

    /// The directory, made by `create` if there is none yet.
    fn get_or_create(
        &self,
        create: impl FnOnce() -> std::io::Result<PrivateDir>,
    ) -> std::io::Result<&Path> {
        if let Some(dir) = self.get() {
            return Ok(dir);
        }
        let _creating = self.creating.lock();
        if let Some(dir) = self.get() {
            return Ok(dir);
        }
        let dir = create()?;
        Ok(self.dir.get_or_init(|| dir).path())
    }

    /// The directory, if it was created.
    fn get(&self) -> Option<&Path> {
        self.dir.get().map(PrivateDir::path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_loading_at_once_share_one_private_directory() {
        let base = crate::private_dirs::create_in(&std::env::temp_dir()).expect("base");
        let base = base.path();
        for _ in 0..20 {
            let lazy = LazyDir::new();
            let start = std::sync::Barrier::new(8);
            let dirs: Vec<PathBuf> = std::thread::scope(|scope| {
                let threads: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            lazy.get_or_create(|| crate::private_dirs::create_in(base))
                                .expect("created")
                                .to_path_buf()
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .map(|t| t.join().expect("thread"))
                    .collect()
            });
            let made = std::fs::read_dir(base).expect("list").count();
            let _ = std::fs::remove_dir_all(base);
            std::fs::create_dir(base).expect("base again");
            assert_eq!(made, 1, "{made} directories made for one");
            assert!(dirs.iter().all(|dir| *dir == dirs[0]));
        }
        let _ = std::fs::remove_dir_all(base);
    }
}
