//! Finding the file a request names under a route's directory: never
//! outside it. The path is opened with `openat2(RESOLVE_BENEATH)` relative
//! to the directory ([`crate::os::open_beneath`]), so the kernel refuses
//! `..` and any symlink, absolute or relative, whose target leaves it
//! (symlinks that stay inside are followed), with no window between a
//! check and the open. A directory is served by its `index.html`; a
//! `.br` or `.gz` sibling is chosen when the client accepts that coding.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::validators::FileVersion;

/// The precompressed siblings looked for, best first: coding and suffix.
const PRECOMPRESSED: [(&str, &str); 2] = [("br", "br"), ("gzip", "gz")];

/// What a request path is under the directory.
#[derive(Debug)]
pub enum Lookup {
    /// Nothing servable there (missing, outside, not a regular file, a
    /// directory without `index.html`).
    NotFound,
    /// A directory named without its trailing slash: redirect, so that
    /// relative links in its `index.html` resolve.
    AddSlash,
    /// A file to serve.
    Found(Found),
}

/// The file chosen for a request.
#[derive(Debug)]
pub struct Found {
    /// Open for reading.
    pub file: File,
    /// Its size and modification time.
    pub version: FileVersion,
    /// `Content-Type`, from the name the client asked for.
    pub content_type: &'static str,
    /// `Content-Encoding` of a precompressed sibling served instead.
    pub coding: Option<&'static str>,
    /// A precompressed sibling exists: the answer depends on
    /// `Accept-Encoding` (`Vary`).
    pub varies: bool,
}

/// Looks up `relative` (segments already checked: no `.`, `..` or NUL;
/// empty for the directory itself) under `root`. `slash`: the request's
/// path ended in `/`. `accepts` tells whether the client takes a coding.
pub fn find(
    root: &Path,
    relative: &str,
    slash: bool,
    accepts: impl Fn(&str) -> bool,
) -> io::Result<Lookup> {
    let dir = match crate::os::open_directory(root) {
        Ok(dir) => dir,
        Err(error) if missing(&error) => return Ok(Lookup::NotFound),
        Err(error) => return Err(error),
    };
    let mut name = PathBuf::from(if relative.is_empty() { "." } else { relative });
    let Some(mut file) = open(&dir, &name)? else {
        return Ok(Lookup::NotFound);
    };
    let mut meta = file.metadata()?;
    if meta.is_dir() {
        if !slash {
            return Ok(Lookup::AddSlash);
        }
        name.push("index.html");
        let Some(index) = open(&dir, &name)? else {
            return Ok(Lookup::NotFound);
        };
        file = index;
        meta = file.metadata()?;
    }
    if !meta.is_file() {
        return Ok(Lookup::NotFound);
    }
    let content_type = super::content_type::of(&name);
    let mut found = Found {
        version: version(&meta),
        file,
        content_type,
        coding: None,
        varies: false,
    };
    for (coding, suffix) in PRECOMPRESSED {
        let mut sibling = name.clone().into_os_string();
        sibling.push(".");
        sibling.push(suffix);
        let Some(file) = open(&dir, Path::new(&sibling))? else {
            continue;
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            continue;
        }
        found.varies = true;
        if found.coding.is_none() && accepts(coding) {
            found.file = file;
            found.version = version(&meta);
            found.coding = Some(coding);
        }
    }
    Ok(Lookup::Found(found))
}

/// Opens `name` beneath `dir`; `None` when it is not there for this
/// request (missing, outside the directory, not readable).
fn open(dir: &File, name: &Path) -> io::Result<Option<File>> {
    match crate::os::open_beneath(dir, name) {
        Ok(file) => Ok(Some(file)),
        Err(error) if missing(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Errors that mean "no such file here" to the client.
fn missing(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::ENOENT
                | libc::ENOTDIR
                | libc::EXDEV // RESOLVE_BENEATH: it leaves the directory
                | libc::ELOOP
                | libc::EACCES
                | libc::EPERM
                | libc::ENAMETOOLONG
                | libc::ENXIO
        )
    )
}

fn version(meta: &std::fs::Metadata) -> FileVersion {
    FileVersion {
        size: meta.len(),
        modified: meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH),
    }
}

/// Whether an `Accept-Encoding` value accepts `coding` (listed, or `*`,
/// with a quality above 0).
pub fn accepts(header: &str, coding: &str) -> bool {
    let mut wildcard = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return quality > 0.0;
        }
        if name == "*" {
            wildcard = Some(quality > 0.0);
        }
    }
    wildcard.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_with_qualities() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("gzip;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0, br", "gzip"));
        assert!(accepts("*", "br"));
        assert!(!accepts("*, br;q=0", "br"));
        assert!(!accepts("identity", "gzip"));
        assert!(!accepts("", "gzip"));
    }
}
