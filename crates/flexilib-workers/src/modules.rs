//! Where a worker's modules come from: its project directory, and nothing
//! else.
//!
//! The project directory is the directory of the route's `wrangler.toml`
//! (or of its script). Every specifier, static or `import()`, is resolved
//! here: only relative paths (`./`, `../`) are accepted, the result is
//! canonicalised (symbolic links followed) and must still lie inside the
//! project, and must be a `.js` or `.mjs` file, so that `.dev.vars`,
//! `wrangler.toml` or the KV databases cannot be compiled as JavaScript
//! (whose error messages would quote them). Files are opened without
//! blocking (`O_NONBLOCK`: a FIFO answers at once), must be regular files
//! once open, and are read up to [`MAX_MODULE_BYTES`].
//!
//! A module is read once per instance: every isolate of the instance
//! (each thread's, and one built afresh after a reset) compiles the same
//! source, even if the file changed since (a change builds a new instance).
//!
//! Package imports (`node_modules`) are a later addition: they belong in
//! [`Project::resolve`].

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, FileType, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The largest module file read (10 MiB, Cloudflare's limit for a whole
/// paid-plan worker).
pub const MAX_MODULE_BYTES: u64 = 10 * 1024 * 1024;

/// File extensions of modules.
const EXTENSIONS: [&str; 2] = ["js", "mjs"];

/// Why a module cannot be resolved or read. Messages name the specifier
/// (or the path inside the project) and never the file's content.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// A package name (`lodash`, `node:fs`).
    #[error("cannot import '{0}': only relative module paths (./ or ../) can be imported (bundle packages first)")]
    Bare(String),
    /// An absolute path.
    #[error("cannot import '{0}': absolute module paths are refused (modules come from the worker's project directory)")]
    Absolute(String),
    /// Nothing there.
    #[error("cannot import '{0}': no such module")]
    NotFound(String),
    /// Outside the project directory (`../`, a symbolic link).
    #[error("cannot import '{0}': it is outside the worker's project directory")]
    Outside(String),
    /// Not a `.js`/`.mjs` file.
    #[error("cannot import '{0}': only .js and .mjs files are modules")]
    NotModule(String),
    /// A directory, FIFO, device or socket.
    #[error("cannot import '{0}': not a regular file ({1})")]
    NotRegular(String, &'static str),
    /// Over [`MAX_MODULE_BYTES`].
    #[error("cannot import '{0}': larger than the {MAX_MODULE_BYTES}-byte limit of a module")]
    TooLarge(String),
    /// Any other I/O failure.
    #[error("cannot import '{0}': {1}")]
    Io(String, #[source] std::io::Error),
    /// The project directory itself cannot be used.
    #[error("the worker's project directory {}: {source}", .dir.display())]
    Root {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A worker's project directory, and the modules read from it.
#[derive(Debug, Clone)]
pub struct Project {
    /// Canonical.
    root: PathBuf,
    /// Sources read, by canonical path (shared by the clones).
    sources: Arc<Mutex<HashMap<PathBuf, Arc<Vec<u8>>>>>,
}

impl Project {
    /// The project rooted at `dir`.
    pub fn new(dir: &Path) -> Result<Project, ModuleError> {
        let root = dir.canonicalize().map_err(|source| ModuleError::Root {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok(Project {
            root,
            sources: Arc::default(),
        })
    }

    /// The canonical project directory.
    #[cfg(test)]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` as the worker sees it: `./src/app.js` inside the project,
    /// else as given.
    pub fn shown(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(inside) => format!("./{}", inside.display()),
            Err(_) => path.display().to_string(),
        }
    }

    /// The module `specifier` imported by module `base` (a module name,
    /// i.e. a canonical path inside the project; anything else, such as
    /// code from `eval`, imports relative to the project directory).
    /// Returns the canonical path, which names the module.
    pub fn resolve(&self, base: &str, specifier: &str) -> Result<PathBuf, ModuleError> {
        if specifier.starts_with('/') {
            return Err(ModuleError::Absolute(specifier.into()));
        }
        if !(specifier.starts_with("./") || specifier.starts_with("../")) {
            return Err(ModuleError::Bare(specifier.into()));
        }
        let base = Path::new(base);
        let dir = match base.parent() {
            Some(dir) if base.starts_with(&self.root) => dir,
            _ => &self.root,
        };
        self.locate(&dir.join(specifier), specifier)
    }

    /// Checks that `path` (absolute, or relative to the project) is a
    /// module inside the project; returns its canonical path. `shown`
    /// names it in errors.
    pub fn locate(&self, path: &Path, shown: &str) -> Result<PathBuf, ModuleError> {
        let joined = self.root.join(path);
        let canonical = joined.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModuleError::NotFound(shown.into()),
            _ => ModuleError::Io(shown.into(), e),
        })?;
        self.check(&canonical, shown)?;
        Ok(canonical)
    }

    fn check(&self, canonical: &Path, shown: &str) -> Result<(), ModuleError> {
        if !canonical.starts_with(&self.root) {
            return Err(ModuleError::Outside(shown.into()));
        }
        let extension = canonical.extension().and_then(OsStr::to_str);
        if !extension.is_some_and(|e| EXTENSIONS.contains(&e)) {
            return Err(ModuleError::NotModule(shown.into()));
        }
        Ok(())
    }

    /// The source of module `path` (a canonical path from
    /// [`Project::resolve`]): as first read by this instance, or read now.
    pub fn read(&self, path: &Path) -> Result<Vec<u8>, ModuleError> {
        let cached = self
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned();
        if let Some(source) = cached {
            return Ok(source.to_vec());
        }
        let source = self.read_file(path)?;
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_path_buf(), Arc::new(source.clone()));
        Ok(source)
    }

    /// Reads module `path` from its file, checking again what was actually
    /// opened.
    fn read_file(&self, path: &Path) -> Result<Vec<u8>, ModuleError> {
        let shown = self.shown(path);
        self.check(path, &shown)?;
        let (file, metadata) = open_regular(path).map_err(|e| match e {
            OpenError::NotRegular(what) => ModuleError::NotRegular(shown.clone(), what),
            OpenError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                ModuleError::NotFound(shown.clone())
            }
            OpenError::Io(e) => ModuleError::Io(shown.clone(), e),
        })?;
        // A directory on the way may have been replaced by a link since
        // `resolve`: where the open file really is decides.
        if let Some(real) = opened_path(&file) {
            if !real.starts_with(&self.root) {
                return Err(ModuleError::Outside(shown));
            }
        }
        if metadata.len() > MAX_MODULE_BYTES {
            return Err(ModuleError::TooLarge(shown));
        }
        let mut source = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        file.take(MAX_MODULE_BYTES + 1)
            .read_to_end(&mut source)
            .map_err(|e| ModuleError::Io(shown.clone(), e))?;
        if source.len() as u64 > MAX_MODULE_BYTES {
            return Err(ModuleError::TooLarge(shown));
        }
        Ok(source)
    }
}

/// Why [`open_regular`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A directory, FIFO, device or socket.
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    /// The file system said no.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Opens `path` for reading if it is a regular file (symbolic links
/// followed), without blocking: its type is checked before opening (so
/// nothing else is opened), the open is `O_NONBLOCK` (a FIFO swapped in
/// between opens at once) and the type of what was opened is checked
/// again. Returns the file and its metadata.
pub fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), OpenError> {
    if let Some(what) = not_regular(std::fs::metadata(path)?.file_type()) {
        return Err(OpenError::NotRegular(what));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let metadata = file.metadata()?;
    if let Some(what) = not_regular(metadata.file_type()) {
        return Err(OpenError::NotRegular(what));
    }
    Ok((file, metadata))
}

/// Reads the regular file `path` (see [`open_regular`]) as UTF-8, up to
/// `limit` bytes (more is an error).
pub fn read_text(path: &Path, limit: u64) -> std::io::Result<String> {
    let (file, _) = open_regular(path).map_err(|e| match e {
        OpenError::Io(e) => e,
        other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other.to_string()),
    })?;
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(text)
}

/// What a file is, if it is not a regular file.
fn not_regular(kind: FileType) -> Option<&'static str> {
    if kind.is_file() {
        None
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else {
        Some("not a file")
    }
}

/// Where an open file is, as the kernel knows it (`None` without `/proc`).
fn opened_path(file: &File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd as _;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(tag: &str) -> (PathBuf, Project) {
        let dir = std::env::temp_dir().join(format!(
            "flexilib-workers-modules-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("app/lib")).expect("dirs");
        std::fs::write(dir.join("app/index.js"), "export default {};\n").expect("write");
        std::fs::write(dir.join("app/lib/a.mjs"), "export const a = 1;\n").expect("write");
        std::fs::write(dir.join("app/.dev.vars"), "X=y\n").expect("write");
        std::fs::write(dir.join("outside.js"), "export const o = 1;\n").expect("write");
        let project = Project::new(&dir.join("app")).expect("project");
        (dir, project)
    }

    #[test]
    fn relative_specifiers_resolve_inside_the_project_only() {
        let (dir, project) = project("resolve");
        let root = project.root().to_path_buf();
        let main = root.join("index.js");
        let base = main.to_string_lossy();
        assert_eq!(
            project.resolve(&base, "./lib/a.mjs").expect("inside"),
            root.join("lib/a.mjs")
        );
        let from_lib = root.join("lib/a.mjs");
        assert_eq!(
            project
                .resolve(&from_lib.to_string_lossy(), "../index.js")
                .expect("up, still inside"),
            main
        );
        assert!(matches!(
            project.resolve(&base, "../outside.js"),
            Err(ModuleError::Outside(_))
        ));
        assert!(matches!(
            project.resolve(&base, "/etc/passwd"),
            Err(ModuleError::Absolute(_))
        ));
        assert!(matches!(
            project.resolve(&base, "lodash"),
            Err(ModuleError::Bare(_))
        ));
        assert!(matches!(
            project.resolve(&base, "./.dev.vars"),
            Err(ModuleError::NotModule(_))
        ));
        assert!(matches!(
            project.resolve(&base, "./nope.js"),
            Err(ModuleError::NotFound(_))
        ));
        // From code that is not a module of the project: the project root.
        assert_eq!(project.resolve("<eval>", "./index.js").expect("root"), main);
        assert_eq!(project.shown(&from_lib), "./lib/a.mjs");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reading_refuses_what_is_not_a_small_regular_file_inside() {
        let (dir, project) = project("read");
        let root = project.root().to_path_buf();
        assert_eq!(
            project.read(&root.join("lib/a.mjs")).expect("read"),
            b"export const a = 1;\n"
        );
        // Read once: a later edit is for the next instance.
        std::fs::write(root.join("lib/a.mjs"), "export const a = 2;\n").expect("write");
        assert_eq!(
            project.clone().read(&root.join("lib/a.mjs")).expect("read"),
            b"export const a = 1;\n"
        );
        assert!(matches!(
            project.read(&dir.join("outside.js")),
            Err(ModuleError::Outside(_))
        ));
        std::fs::create_dir(root.join("dir.js")).expect("dir");
        assert!(matches!(
            project.read(&root.join("dir.js")),
            Err(ModuleError::NotRegular(_, "a directory"))
        ));
        let big = root.join("big.js");
        std::fs::write(&big, vec![b' '; MAX_MODULE_BYTES as usize + 1]).expect("write");
        assert!(matches!(project.read(&big), Err(ModuleError::TooLarge(_))));
        let fifo = root.join("fifo.js");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        assert!(matches!(
            project.read(&fifo),
            Err(ModuleError::NotRegular(_, "a FIFO"))
        ));
        assert!(matches!(
            read_text(&fifo, 10).map_err(|e| e.to_string()),
            Err(e) if e == "not a regular file (a FIFO)"
        ));
        assert!(
            read_text(&root.join("index.js"), 5).is_err(),
            "over the limit"
        );
        let message = project
            .read(&root.join("nope.js"))
            .expect_err("missing")
            .to_string();
        assert_eq!(message, "cannot import './nope.js': no such module");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
