//! Where a worker's modules come from: its project directory, and nothing
//! else.
//!
//! The project directory is the directory of the route's `wrangler.toml`
//! (or of its script). Every specifier, static or `import()`, is resolved
//! here, as wrangler's bundler resolves it (`oxc_resolver`): a relative
//! path (`./`, `../`; extensions and `index` files tried as esbuild tries
//! them, `./x.js` finding `x.ts`), or a package name found in a
//! `node_modules` directory of the project or of a directory above it
//! (where npm workspaces hoist packages), through its `package.json`
//! `exports` with the conditions `workerd`, `worker`, `browser`, then
//! `import` (`require` for a CommonJS `require`) and `default`. Absolute
//! paths are refused. The result is canonicalised (symbolic links
//! followed) and must lie inside the project or inside one of those
//! `node_modules` directories, and be a module file (`.js`, `.mjs`,
//! `.cjs`, `.ts`, `.mts`, `.cts`, `.json`), so that `.dev.vars`,
//! `wrangler.toml` or the KV databases cannot be compiled as JavaScript
//! (whose error messages would quote them). Files are opened without
//! blocking (`O_NONBLOCK`: a FIFO answers at once), must be regular files
//! once open, and are read up to [`MAX_MODULE_BYTES`].
//!
//! A module is read and compiled ([`crate::compile`]: TypeScript stripped,
//! CommonJS wrapped) once per instance: every isolate of the instance
//! (each thread's, and one built afresh after a reset) compiles the same
//! source, even if the file changed since (a change builds a new instance).
//! Compiled output is also kept by content hash for the process's life, so
//! a rebuild after an edit compiles only what changed.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, FileType, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The largest module file read (10 MiB, Cloudflare's limit for a whole
/// paid-plan worker).
pub const MAX_MODULE_BYTES: u64 = 10 * 1024 * 1024;

/// File extensions of modules.
const EXTENSIONS: [&str; 7] = ["js", "mjs", "cjs", "ts", "mts", "cts", "json"];

/// Compiled modules kept by content hash, at most this many.
const COMPILED_CACHE_ENTRIES: usize = 4096;

/// Why a module cannot be resolved or read. Messages name the specifier
/// (or the path inside the project) and never the file's content.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// A package that is not installed, or a built-in module that is not
    /// emulated (`node:fs`).
    #[error("cannot import '{0}': {1}")]
    Bare(String, &'static str),
    /// The file is not a valid module (a syntax error, with its position).
    #[error("cannot import '{0}': {1}")]
    Compile(String, #[source] crate::compile::CompileError),
    /// A `node:` built-in module that is not there (without the
    /// `nodejs_compat` flag, or not emulated): workerd's message, and why.
    #[error("No such module \"{0}\". ({1})")]
    NoSuchModule(String, &'static str),
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
    #[error(
        "cannot import '{0}': only .js, .mjs, .cjs, .ts, .mts, .cts and .json files are modules"
    )]
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
#[derive(Clone)]
pub struct Project {
    /// Canonical.
    root: PathBuf,
    /// The `node_modules` directories modules may also come from: the
    /// project's and those of the directories above it (canonical).
    packages: Arc<Vec<PathBuf>>,
    /// Resolves `import` specifiers.
    imports: Arc<oxc_resolver::Resolver>,
    /// Resolves `require` specifiers.
    requires: Arc<oxc_resolver::Resolver>,
    /// Modules compiled, by canonical path (shared by the clones).
    sources: Arc<Mutex<HashMap<PathBuf, Arc<Vec<u8>>>>>,
    /// Whether the `nodejs_compat` built-ins (`node:buffer`, …) resolve.
    node_compat: bool,
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// Resolver options as wrangler's esbuild has them for workerd, with the
/// conditions of an `import` (`require`: false) or a `require`.
fn resolve_options(require: bool) -> oxc_resolver::ResolveOptions {
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let kind = if require { "require" } else { "import" };
    oxc_resolver::ResolveOptions {
        condition_names: strings(&["workerd", "worker", "browser", kind, "default"]),
        main_fields: strings(&["browser", "module", "main"]),
        alias_fields: vec![vec!["browser".to_string()]],
        extensions: strings(&[".ts", ".mts", ".js", ".mjs", ".cjs", ".json"]),
        extension_alias: vec![
            (".js".to_string(), strings(&[".ts", ".js"])),
            (".mjs".to_string(), strings(&[".mts", ".mjs"])),
            (".cjs".to_string(), strings(&[".cts", ".cjs"])),
        ],
        // Not from `NODE_PATH`: only the project's `node_modules` and those above.
        node_path: false,
        builtin_modules: false,
        ..oxc_resolver::ResolveOptions::default()
    }
}

/// Compiled modules by the SHA-256 of their path, kind and text.
type CompiledCache = Mutex<HashMap<[u8; 32], Arc<Vec<u8>>>>;

/// A process-wide cache of compiled modules by content hash: a rebuild
/// after an edit compiles only the files that changed.
fn compiled_cache() -> &'static CompiledCache {
    static CACHE: std::sync::OnceLock<CompiledCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

impl Project {
    /// The project rooted at `dir`.
    pub fn new(dir: &Path) -> Result<Project, ModuleError> {
        let root = dir.canonicalize().map_err(|source| ModuleError::Root {
            dir: dir.to_path_buf(),
            source,
        })?;
        // Another local user must not be able to plant a package: a
        // `node_modules` counts only if neither it nor the directory holding
        // it can be written by others, and its owner is the project's or root.
        let owner = std::fs::metadata(&root).map(|m| m.uid()).ok();
        let trusted = |dir: &Path| {
            std::fs::metadata(dir)
                .is_ok_and(|m| m.mode() & 0o002 == 0 && (Some(m.uid()) == owner || m.uid() == 0))
        };
        let packages = root
            .ancestors()
            .filter(|dir| trusted(dir))
            .filter_map(|dir| dir.join("node_modules").canonicalize().ok())
            .filter(|modules| trusted(modules))
            .collect();
        Ok(Project {
            root,
            packages: Arc::new(packages),
            imports: Arc::new(oxc_resolver::Resolver::new(resolve_options(false))),
            requires: Arc::new(oxc_resolver::Resolver::new(resolve_options(true))),
            sources: Arc::default(),
            node_compat: false,
        })
    }

    /// The same project with the `nodejs_compat` built-ins resolving (the
    /// compatibility flag) or not.
    #[must_use]
    pub fn with_node_compat(mut self, on: bool) -> Project {
        self.node_compat = on;
        self
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
        let (specifier, resolver) = match specifier.strip_suffix(crate::compile::REQUIRE_MARK) {
            Some(name) => (name, &self.requires),
            None => (specifier, &self.imports),
        };
        if specifier.starts_with('/') {
            return Err(ModuleError::Absolute(specifier.into()));
        }
        let relative = specifier.starts_with("./") || specifier.starts_with("../");
        if !relative && self.node_compat {
            if let Some(name) = crate::node::builtin(specifier) {
                return Ok(PathBuf::from(name));
            }
        }
        if !relative && specifier.starts_with("node:") {
            return Err(ModuleError::NoSuchModule(
                specifier.into(),
                if self.node_compat {
                    "FlexiLib's nodejs_compat has node:buffer, node:events, node:util, node:crypto, node:async_hooks and node:process"
                } else {
                    "the node: built-ins need compatibility_flags = [\"nodejs_compat\"]"
                },
            ));
        }
        if !relative && specifier.starts_with("cloudflare:") {
            return Err(ModuleError::Bare(
                specifier.into(),
                "this built-in module is not emulated yet",
            ));
        }
        let base = Path::new(base);
        let dir = match base.parent() {
            Some(dir) if self.allows(base) => dir,
            _ => &self.root,
        };
        match resolver.resolve(dir, specifier) {
            Ok(found) => {
                let path = found.into_path_buf();
                let canonical = path.canonicalize().map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => ModuleError::NotFound(specifier.into()),
                    _ => ModuleError::Io(specifier.into(), e),
                })?;
                self.check(&canonical, specifier)?;
                Ok(canonical)
            }
            // A relative path that finds nothing: say where it pointed.
            Err(_) if relative => self.locate(&dir.join(specifier), specifier),
            Err(oxc_resolver::ResolveError::NotFound(_)) => Err(ModuleError::Bare(
                specifier.into(),
                "no such package in the project's node_modules (run npm install)",
            )),
            Err(error) => Err(ModuleError::Io(
                specifier.into(),
                std::io::Error::other(error.to_string()),
            )),
        }
    }

    /// Whether a canonical path lies where modules may come from.
    fn allows(&self, canonical: &Path) -> bool {
        canonical.starts_with(&self.root)
            || self.packages.iter().any(|dir| canonical.starts_with(dir))
    }

    /// Whether `path`'s package says `"type": "module"`: the nearest
    /// `package.json` above it, not looking above where modules come from.
    fn in_module_package(&self, path: &Path) -> bool {
        for dir in path.ancestors().skip(1) {
            if !self.allows(dir) {
                return false;
            }
            let manifest = dir.join("package.json");
            if let Ok(text) = read_text(&manifest, MAX_MODULE_BYTES) {
                let kind = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|json| {
                        json.get("type")
                            .and_then(|t| t.as_str())
                            .map(str::to_string)
                    });
                return kind.as_deref() == Some("module");
            }
        }
        false
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
        if !self.allows(canonical) {
            return Err(ModuleError::Outside(shown.into()));
        }
        let extension = canonical.extension().and_then(OsStr::to_str);
        if !extension.is_some_and(|e| EXTENSIONS.contains(&e)) {
            return Err(ModuleError::NotModule(shown.into()));
        }
        Ok(())
    }

    /// The source of module `path` (a canonical path from
    /// [`Project::resolve`]), compiled ([`crate::compile`]): as first read
    /// by this instance, or read now.
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
        let raw = self.read_file(path)?;
        let source = self.compiled(path, &raw)?;
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_path_buf(), Arc::new(source.clone()));
        Ok(source)
    }

    /// `raw`, the text of module `path`, compiled: from the process-wide
    /// cache when the same file had the same content before.
    fn compiled(&self, path: &Path, raw: &[u8]) -> Result<Vec<u8>, ModuleError> {
        use sha2::Digest as _;
        let esm_package = self.in_module_package(path);
        let mut hasher = sha2::Sha256::new();
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update([0, u8::from(esm_package), u8::from(self.node_compat)]);
        hasher.update(raw);
        let key: [u8; 32] = hasher.finalize().into();
        if let Some(hit) = compiled_cache()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(hit.to_vec());
        }
        let shown = self.shown(path);
        let compiled = crate::compile::compile(path, &shown, raw, esm_package, self)
            .map_err(|e| ModuleError::Compile(shown.clone(), e))?;
        let mut cache = compiled_cache()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= COMPILED_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, Arc::new(compiled.clone()));
        Ok(compiled)
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
            if !self.allows(&real) {
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

impl crate::compile::RequireResolver for Project {
    fn resolve_require(&self, from: &Path, specifier: &str) -> bool {
        let marked = format!("{specifier}{}", crate::compile::REQUIRE_MARK);
        self.resolve(&from.to_string_lossy(), &marked).is_ok()
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
            Err(ModuleError::Bare(_, _))
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
    fn packages_resolve_from_node_modules_here_and_above_with_workerd_conditions() {
        let (dir, _) = project("packages");
        let write = |path: &str, text: &str| {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(path, text).expect("write");
        };
        // In the project, with conditional exports: `workerd` wins.
        write(
            "app/node_modules/dual/package.json",
            r#"{"name":"dual","exports":{".":{"workerd":"./w.js","import":"./i.mjs","require":"./r.cjs"},"./sub":{"import":"./sub.mjs","require":"./sub.cjs"}}}"#,
        );
        for file in ["w.js", "i.mjs", "r.cjs", "sub.mjs", "sub.cjs"] {
            write(
                &format!("app/node_modules/dual/{file}"),
                "export default 1;\n",
            );
        }
        // Hoisted above the project, as npm workspaces do.
        write(
            "node_modules/hoisted/package.json",
            r#"{"name":"hoisted","main":"main.js"}"#,
        );
        write("node_modules/hoisted/main.js", "module.exports = 1;\n");
        // TypeScript, imported as `.js` the way TypeScript projects do.
        write("app/src/util.ts", "export const x: number = 1;\n");
        let project = Project::new(&dir.join("app")).expect("project again");
        let root = project.root().to_path_buf();
        let base = root.join("index.js");
        let base = base.to_string_lossy();
        let nm = root.join("node_modules/dual");
        assert_eq!(
            project.resolve(&base, "dual").expect("dual"),
            nm.join("w.js")
        );
        let required = format!("dual/sub{}", crate::compile::REQUIRE_MARK);
        assert_eq!(
            project.resolve(&base, &required).expect("require"),
            nm.join("sub.cjs")
        );
        assert_eq!(
            project.resolve(&base, "dual/sub").expect("import"),
            nm.join("sub.mjs")
        );
        let hoisted = project.resolve(&base, "hoisted").expect("hoisted");
        assert!(
            hoisted.ends_with("node_modules/hoisted/main.js"),
            "{}",
            hoisted.display()
        );
        assert_eq!(
            project.resolve(&base, "./src/util.js").expect("ts by .js"),
            root.join("src/util.ts")
        );
        assert_eq!(
            project
                .resolve(&base, "./src/util")
                .expect("ts without extension"),
            root.join("src/util.ts")
        );
        assert!(matches!(
            project.resolve(&base, "missing-package"),
            Err(ModuleError::Bare(_, _))
        ));
        assert!(matches!(
            project.resolve(&base, "node:fs"),
            Err(ModuleError::NoSuchModule(_, _))
        ));
        // Without the flag `node:` built-ins are not there; with it, those
        // emulated are (bare names too), `node:fs` still not.
        assert!(matches!(
            project.resolve(&base, "node:buffer"),
            Err(ModuleError::NoSuchModule(_, _))
        ));
        let node = project.clone().with_node_compat(true);
        assert_eq!(
            node.resolve(&base, "events").expect("bare built-in"),
            PathBuf::from("node:events")
        );
        assert!(matches!(
            node.resolve(&base, "node:fs"),
            Err(ModuleError::NoSuchModule(_, _))
        ));
        // The hoisted CommonJS file is compiled into a module that exports it.
        let source = project.read(&hoisted).expect("compiled");
        let text = String::from_utf8(source).expect("utf-8");
        assert!(text.contains("export default"), "{text}");
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
