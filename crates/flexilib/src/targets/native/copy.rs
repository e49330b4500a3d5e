//! Private copies of library files, so that every generation is loaded from
//! a file nobody else writes to.
//!
//! `dlopen` of a path that is already loaded returns the old handle (glibc
//! matches by name and inode), and overwriting a mapped `.so` in place
//! crashes the process with SIGBUS. So each load copies the configured file
//! to a unique name in a private directory (`/dev/shm` when it exists),
//! `dlopen`s the copy, and deletes it at once: the mapping keeps the data,
//! and the configured file can be rewritten, renamed or deleted freely.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
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
    /// Copies `source` to a fresh name in the private directory, and checks
    /// that the copy is a complete ELF file: `dlopen` of a file cut short
    /// (still being written) can map segments past its end, and the first
    /// touch of those pages kills the process with SIGBUS.
    pub fn of(source: &Path) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = source
            .file_name()
            .map_or_else(|| "library.so".into(), |n| n.to_string_lossy().into_owned());
        let path = private_dir()?.join(format!("{}-{name}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let mut from = crate::files::open_regular(source)?;
        let copy = Self { path };
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&copy.path)?;
        std::io::copy(&mut from, &mut to)?;
        drop(to);
        let bytes = std::fs::read(&copy.path)?;
        elf_complete(&bytes)
            .map_err(|problem| std::io::Error::new(std::io::ErrorKind::InvalidData, problem))?;
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

/// The private directory, created on first use: a fresh directory of mode
/// 0700 (never one that already exists, which someone else could own), in
/// `/dev/shm` unless that is missing or mounted `noexec`, else in the
/// temporary directory. Named `flexilib-PID-N` so that the supervisor can
/// remove what a crashed worker left.
fn private_dir() -> std::io::Result<&'static Path> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir);
    }
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() && crate::os::allows_exec(shm) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
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
            Ok(()) => return Ok(DIR.get_or_init(|| dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "cannot create a private directory for library copies",
    ))
}

/// Removes the private directories of process `pid` (a worker that died
/// without cleaning up).
pub fn remove_private_dirs_of(pid: u32) {
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

/// Checks that `bytes` hold a whole 64-bit little-endian ELF file: every
/// loadable segment and the section header table (which linkers write
/// last) lie inside it.
pub fn elf_complete(bytes: &[u8]) -> Result<(), String> {
    let field = |offset: usize, len: usize| -> Result<u64, String> {
        let slice = offset
            .checked_add(len)
            .and_then(|end| bytes.get(offset..end))
            .ok_or_else(|| format!("file too short ({} bytes)", bytes.len()))?;
        let mut value = [0u8; 8];
        value[..len].copy_from_slice(slice);
        Ok(u64::from_le_bytes(value))
    };
    if bytes.get(..4) != Some(&b"\x7fELF"[..]) {
        return Err("not an ELF file".into());
    }
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let size = bytes.len() as u64;
    let program_headers = field(0x20, 8)?;
    let section_headers = field(0x28, 8)?;
    let program_header_size = field(0x36, 2)?;
    let program_header_count = field(0x38, 2)?;
    let section_header_size = field(0x3A, 2)?;
    let section_header_count = field(0x3C, 2)?;
    let sections_end =
        section_headers.saturating_add(section_header_size.saturating_mul(section_header_count));
    if sections_end > size {
        return Err(format!(
            "incomplete: section headers end at {sections_end}, file has {size} bytes"
        ));
    }
    const PT_LOAD: u64 = 1;
    for index in 0..program_header_count {
        let at = program_headers.saturating_add(index.saturating_mul(program_header_size));
        let at = usize::try_from(at).map_err(|_| "program header out of range".to_string())?;
        if field(at, 4)? != PT_LOAD {
            continue;
        }
        let end = field(at + 8, 8)?.saturating_add(field(at + 32, 8)?);
        if end > size {
            return Err(format!(
                "incomplete: a segment ends at {end}, file has {size} bytes"
            ));
        }
    }
    Ok(())
}

/// Removes the private directory (at exit; copies are deleted as soon as loaded).
pub fn remove_private_dir() {
    if let Ok(dir) = private_dir() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_libraries_are_refused() {
        let whole = std::fs::read(std::env::current_exe().expect("test binary")).expect("read");
        assert_eq!(elf_complete(&whole), Ok(()));
        for cut in [10, 100, whole.len() / 3, whole.len() - 1] {
            assert!(
                elf_complete(&whole[..cut]).is_err(),
                "cut at {cut} accepted"
            );
        }
        assert_eq!(elf_complete(b"#!/bin/sh\n"), Err("not an ELF file".into()));
    }
}
