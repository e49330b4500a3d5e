//! Opening the files the server reads (the config, libraries) so that
//! nothing can block: only regular files are opened, and with `O_NONBLOCK`.
//!
//! `open()` of a FIFO for reading waits for a writer, for ever if none
//! comes; a device file may block or have side effects. The type is checked
//! before opening (so nothing else is ever opened), the open itself cannot
//! block (`O_NONBLOCK`: a FIFO swapped in between the two steps opens at
//! once), and the type of what was opened is checked again.

use std::fs::{File, FileType, OpenOptions};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Opens `path` for reading if it is a regular file (symbolic links
/// followed); otherwise fails with `InvalidInput`, naming what it is.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    check_regular(std::fs::metadata(path)?.file_type())?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // The name may have been pointed at something else in between.
    check_regular(file.metadata()?.file_type())?;
    Ok(file)
}

fn check_regular(kind: FileType) -> std::io::Result<()> {
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file"
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("not a regular file ({what})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open() {
        let exe = std::env::current_exe().expect("test binary");
        assert!(open_regular(&exe).is_ok());
        let dir = exe.parent().expect("directory");
        assert_eq!(
            open_regular(dir).expect_err("a directory").to_string(),
            "not a regular file (a directory)"
        );
        assert_eq!(
            open_regular(Path::new("/dev/null"))
                .expect_err("a device")
                .to_string(),
            "not a regular file (a character device)"
        );
        assert_eq!(
            open_regular(Path::new("/no/such/file"))
                .expect_err("missing")
                .kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
