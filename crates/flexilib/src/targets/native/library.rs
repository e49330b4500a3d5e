//! One configured library and its generations.
//!
//! The file is loaded on the first request routed to it. When it changes on
//! disk, [`NativeLibrary::reload`] loads the new file as the next
//! generation and swaps it in atomically: new requests go to the new
//! generation at once, requests in flight finish on the one they started
//! on, and a generation is unloaded when its last request ends (each call
//! holds an `Arc` to it). A file that fails to load leaves the current
//! generation serving.

use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::copy::{CopyDir, PrivateCopy};
use super::ffi::{LoadError, LoadedLibrary};
use crate::file_version::FileVersion;
use crate::rate_limit::RateLimit;

/// A library named by the config.
#[derive(Debug)]
pub struct NativeLibrary {
    path: PathBuf,
    current: ArcSwapOption<Generation>,
    /// Serialises loads; holds the number of the last generation loaded and
    /// the last failed load.
    loading: Mutex<LoadState>,
    /// Warnings about calls (NULL or invalid responses) that fail on every
    /// request: one of each kind per [`WARNING_PERIOD`].
    warnings: RateLimit,
    /// Where its generations are copied to be loaded.
    copies: Arc<CopyDir>,
}

/// At most one warning about a library's failing calls per this period.
const WARNING_PERIOD: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct LoadState {
    /// Number of the last generation loaded.
    last: u64,
    /// The file version that last failed to load (`None`: there was no
    /// file), and why: requests for a file that did not change, or is still
    /// missing, are answered without copying and loading it again (and
    /// without logging the same failure again).
    failed: Option<(Option<FileVersion>, String)>,
    /// Since when the file has looked half written (empty, not yet ELF,
    /// or cut short), and at which version: a reload that finds it so stays
    /// quiet until [`WRITING_GRACE`] has passed on that same version.
    writing: Option<(FileVersion, Instant)>,
}

/// How long a library file may look half written (a linker writing it in
/// place: `cc -o lib.so`) before a reload that fails on it is logged.
pub const WRITING_GRACE: Duration = Duration::from_secs(2);

/// True for a load error that a file still being written gives.
fn looks_half_written(error: &LoadError) -> bool {
    use super::copy::CopyError;
    use super::elf::ElfProblem;
    matches!(
        error,
        LoadError::Copy {
            source: CopyError::Elf(
                ElfProblem::NotElf | ElfProblem::TooShort { .. } | ElfProblem::Incomplete { .. }
            ),
            ..
        }
    )
}

/// One loaded version of the library.
#[derive(Debug)]
pub struct Generation {
    /// 1 for the first load, then counting reloads.
    pub number: u64,
    /// The loaded code.
    pub library: LoadedLibrary,
    version: FileVersion,
}

/// What a reload did.
#[derive(Debug)]
pub enum Reloaded {
    /// Never loaded: the next request loads the new file anyway.
    NotLoaded,
    /// The file is the version already loaded.
    Unchanged,
    /// A new generation serves.
    Loaded(u64),
    /// The new file could not be loaded (logged); the old generation keeps serving.
    Failed,
    /// The new file looks half written (not logged yet): look again after
    /// [`WRITING_GRACE`]; the old generation keeps serving.
    Writing,
}

impl NativeLibrary {
    /// A library at `path`, not yet loaded.
    /// A library at `path`, not yet loaded; its generations are copied
    /// into `copies`.
    pub fn new(path: PathBuf, copies: Arc<CopyDir>) -> Self {
        Self {
            path,
            current: ArcSwapOption::empty(),
            loading: Mutex::new(LoadState::default()),
            warnings: RateLimit::new(WARNING_PERIOD),
            copies,
        }
    }

    /// `Some(n)` if a warning about a failed call may be logged now (`n`:
    /// how many like it were held back since the last); `None` to stay
    /// quiet. `problem` tells one kind of failure from another.
    pub fn may_warn(&self, problem: &str) -> Option<u64> {
        self.warnings.check(problem)
    }

    /// The current generation, loading the first one if needed. Callers
    /// hold the returned `Arc` for the duration of their call.
    pub fn get(&self) -> Result<Arc<Generation>, LoadError> {
        if let Some(current) = self.current.load_full() {
            return Ok(current);
        }
        let mut state = self.loading.lock();
        if let Some(current) = self.current.load_full() {
            return Ok(current);
        }
        // One `stat`: a file that appeared or changed since it failed is
        // tried again at once, whether or not a watch saw it happen.
        let version = FileVersion::of(&self.path).ok();
        if let Some((failed, reason)) = &state.failed {
            if version == *failed {
                return Err(LoadError::Unchanged {
                    path: self.path.clone(),
                    reason: reason.clone(),
                });
            }
        }
        match self.load(state.last + 1) {
            Ok(generation) => {
                let generation = Arc::new(generation);
                state.last = generation.number;
                state.failed = None;
                self.current.store(Some(Arc::clone(&generation)));
                Ok(generation)
            }
            Err(error) => {
                state.failed = Some((version, error.to_string()));
                Err(error)
            }
        }
    }

    /// Loads the file again if it changed since the current generation.
    pub fn reload(&self) -> Reloaded {
        let mut state = self.loading.lock();
        let Some(current) = self.current.load_full() else {
            return Reloaded::NotLoaded;
        };
        let version = match FileVersion::of(&self.path) {
            Ok(version) if version == current.version => return Reloaded::Unchanged,
            // Deleted (a delete + create is under way): wait for the create.
            Err(_) => return Reloaded::Unchanged,
            Ok(version) => version,
        };
        match self.load(state.last + 1) {
            Ok(generation) => {
                let number = generation.number;
                state.last = number;
                state.writing = None;
                self.current.store(Some(Arc::new(generation)));
                Reloaded::Loaded(number)
            }
            Err(error) if looks_half_written(&error) => {
                let since = match state.writing {
                    Some((seen, since)) if seen == version => since,
                    _ => {
                        state.writing = Some((version, Instant::now()));
                        Instant::now()
                    }
                };
                if since.elapsed() < WRITING_GRACE {
                    tracing::debug!(library = %self.path.display(), %error, "library file still being written");
                    return Reloaded::Writing;
                }
                state.writing = None;
                tracing::warn!(
                    library = %self.path.display(),
                    serving = current.number,
                    %error,
                    "reload failed; the current generation keeps serving"
                );
                Reloaded::Failed
            }
            Err(error) => {
                state.writing = None;
                tracing::warn!(
                    library = %self.path.display(),
                    serving = current.number,
                    %error,
                    "reload failed; the current generation keeps serving"
                );
                Reloaded::Failed
            }
        }
    }

    /// Loads generation `number` from a private copy of the file.
    fn load(&self, number: u64) -> Result<Generation, LoadError> {
        let started = Instant::now();
        let copy_error = |source| LoadError::Copy {
            path: self.path.clone(),
            source,
        };
        let version = FileVersion::of(&self.path).map_err(|e| copy_error(e.into()))?;
        let copy = PrivateCopy::of(&self.path, &self.copies).map_err(copy_error)?;
        let library = LoadedLibrary::open(copy.path(), &self.path)?;
        drop(copy);
        tracing::info!(
            library = %self.path.display(),
            generation = number,
            load_ms = started.elapsed().as_secs_f64() * 1e3,
            "library generation loaded"
        );
        Ok(Generation {
            number,
            library,
            version,
        })
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        tracing::debug!(generation = self.number, "library generation retired");
    }
}
