//! Per-route instances of ABI-2 libraries: built by the library's
//! `flexilib_instance_new` from the route's options, on one library
//! generation, freed by `flexilib_instance_free` after their last request.

use std::ffi::{c_char, c_void, CString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flexilib_abi as abi;

use super::library::Generation;
use crate::config::LibrarySpec;
use crate::file_version::FileVersion;

/// Why an instance could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InstanceError {
    /// Options were given to a library without `flexilib_instance_new`.
    #[error("{path} takes no options: it exports no flexilib_instance_new", path = .0.display())]
    NoConstructor(PathBuf),
    /// The constructor returned NULL.
    #[error("{}: {message}", failed_what(.path, .route, *.runtime))]
    Failed {
        /// The library.
        path: PathBuf,
        /// The route.
        route: String,
        /// What the library said.
        message: String,
        /// The runtime the route is for (`worker`), if any.
        runtime: Option<&'static str>,
    },
}

/// What failed, as its author knows it: "the worker for route `/w` did not
/// start", or the library and route for a plain library.
fn failed_what(path: &std::path::Path, route: &str, runtime: Option<&str>) -> String {
    match runtime {
        Some(runtime) => format!("the {runtime} for route `{route}` did not start"),
        None => format!(
            "{}: the instance for route `{route}` failed",
            path.display()
        ),
    }
}

/// One built instance.
#[derive(Debug)]
pub struct LibraryInstance {
    pointer: *mut c_void,
    /// The library generation it belongs to (kept loaded while it lives).
    pub generation: Arc<Generation>,
    /// 1 for the first build of the route, then counting rebuilds.
    pub number: u64,
    /// The files it read, with their versions when it was built.
    pub depends_on: Vec<(PathBuf, Option<FileVersion>)>,
}

// SAFETY: the ABI requires instances to be usable from any thread and by
// several requests at once (include/flexilib.h); the pointer is only passed
// back to the library that made it.
unsafe impl Send for LibraryInstance {}
// SAFETY: as above.
unsafe impl Sync for LibraryInstance {}

impl LibraryInstance {
    /// The pointer requests carry.
    pub fn pointer(&self) -> *mut c_void {
        self.pointer
    }

    /// What the instance reports through `flexilib_instance_gauges`
    /// (nothing if the library does not export it): `(name, help, value)`
    /// as given, unchecked.
    pub fn gauges(&self) -> Vec<(Vec<u8>, Vec<u8>, f64)> {
        // SAFETY: the pointer came from this generation's constructor and
        // is freed only when this struct drops, which `&self` prevents for
        // the call.
        unsafe { self.generation.library.instance_gauges(self.pointer) }
    }

    /// True if a file it read is no longer the version it read.
    pub fn is_stale(&self) -> bool {
        self.depends_on
            .iter()
            .any(|(path, version)| FileVersion::of(path).ok() != *version)
    }
}

impl Drop for LibraryInstance {
    fn drop(&mut self) {
        // SAFETY: the pointer came from this generation's constructor, is
        // freed once (here), and no request uses it: every request holds an
        // `Arc` to the instance.
        unsafe { self.generation.library.free_instance(self.pointer) };
        tracing::debug!(instance = self.number, "library instance freed");
    }
}

/// What the constructor reports through the host callbacks.
#[derive(Default)]
struct BuildReport {
    depends_on: Vec<PathBuf>,
    failure: Option<String>,
}

/// A failed build: why, and the files it read (a change to one of them is
/// worth another try).
pub type BuildFailure = (InstanceError, Vec<PathBuf>);

/// Builds instance `number` of `spec`'s route on `generation`.
pub fn build(
    generation: &Arc<Generation>,
    spec: &LibrarySpec,
    number: u64,
) -> Result<LibraryInstance, BuildFailure> {
    let failed = |message: String| InstanceError::Failed {
        path: spec.path.clone(),
        route: spec.route.clone(),
        message,
        runtime: spec.runtime,
    };
    let config_dir = CString::new(spec.config_dir.as_os_str().as_bytes()).map_err(|_| {
        (
            failed("the config directory contains a NUL byte".into()),
            Vec::new(),
        )
    })?;
    let options: Vec<abi::RouteOption> = spec
        .options
        .iter()
        .map(|(key, value)| abi::RouteOption {
            key: key.as_ptr().cast(),
            key_len: key.len(),
            value: value.as_ptr().cast(),
            value_len: value.len(),
        })
        .collect();
    let mut report = BuildReport::default();
    let config = abi::InstanceConfig {
        abi_version: abi::ABI_VERSION,
        route: spec.route.as_ptr().cast(),
        route_len: spec.route.len(),
        config_dir: config_dir.as_ptr(),
        config_dir_len: config_dir.as_bytes().len(),
        options: options.as_ptr(),
        options_len: options.len(),
        host_context: std::ptr::from_mut(&mut report).cast(),
        depends_on: report_dependency,
        fail: report_failure,
    };
    let started = std::time::SystemTime::now();
    // SAFETY: `config` and everything it points to (strings of `spec`,
    // `config_dir`, `options`, `report`) live on this frame for the call.
    let pointer = unsafe { generation.library.new_instance(&config) };
    let files: Vec<PathBuf> = report
        .depends_on
        .into_iter()
        .map(|path| {
            if path.is_absolute() {
                path
            } else {
                spec.config_dir.join(path)
            }
        })
        .collect();
    let Some(pointer) = pointer else {
        return Err((InstanceError::NoConstructor(spec.path.clone()), files));
    };
    if pointer.is_null() {
        let message = report
            .failure
            .unwrap_or_else(|| "flexilib_instance_new returned NULL".into());
        return Err((failed(message), files));
    }
    let depends_on = files
        .into_iter()
        .map(|path| {
            // A file saved again while the constructor ran (two saves a few
            // ms apart) may hold newer bytes than it read: its version is
            // left unknown, so the instance counts as stale and the next
            // look (an event, or the reload thread's recheck) rebuilds it.
            let version = FileVersion::settled_since(&path, started);
            (path, version)
        })
        .collect();
    Ok(LibraryInstance {
        pointer,
        generation: Arc::clone(generation),
        number,
        depends_on,
    })
}

/// The report behind a constructor's `host_context`, and the text at
/// (`text`, `len`).
///
/// # Safety
/// `context` must be the `host_context` of a live build and `text` valid
/// for `len` bytes (or NULL).
unsafe fn report_and_text<'a>(
    context: *mut c_void,
    text: *const c_char,
    len: usize,
) -> Option<(&'a mut BuildReport, &'a [u8])> {
    if context.is_null() {
        return None;
    }
    // SAFETY: per this function's contract, `context` points to the build's
    // `BuildReport`, which only the constructor's thread touches meanwhile.
    let report = unsafe { &mut *context.cast::<BuildReport>() };
    let text = if text.is_null() || len == 0 || len > isize::MAX as usize {
        &[][..]
    } else {
        // SAFETY: non-NULL and valid for `len` bytes per the contract.
        unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len) }
    };
    Some((report, text))
}

/// `config->depends_on(host_context, path, len)`.
unsafe extern "C" fn report_dependency(context: *mut c_void, path: *const c_char, len: usize) {
    // SAFETY: the library calls this during `flexilib_instance_new` with the
    // `host_context` it was given and a path of `len` bytes (ABI 2).
    if let Some((report, path)) = unsafe { report_and_text(context, path, len) } {
        if !path.is_empty() {
            report
                .depends_on
                .push(Path::new(std::ffi::OsStr::from_bytes(path)).to_path_buf());
        }
    }
}

/// `config->fail(host_context, message, len)`.
unsafe extern "C" fn report_failure(context: *mut c_void, message: *const c_char, len: usize) {
    // SAFETY: as for `report_dependency`.
    if let Some((report, message)) = unsafe { report_and_text(context, message, len) } {
        report.failure = Some(String::from_utf8_lossy(message).into_owned());
    }
}
