//! One configured library: loaded lazily, then shared by all handler threads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

use super::ffi::{LoadError, LoadedLibrary};

/// A library named by the config. The file is opened on the first request
/// routed to it; a failed load is not cached, so the next request retries.
#[derive(Debug)]
pub struct NativeLibrary {
    path: PathBuf,
    loaded: ArcSwapOption<LoadedLibrary>,
    load_lock: Mutex<()>,
}

impl NativeLibrary {
    /// A library at `path`, not yet loaded.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            loaded: ArcSwapOption::empty(),
            load_lock: Mutex::new(()),
        }
    }

    /// The configured path.
    #[cfg(test)]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The loaded library, loading it now if this is the first use.
    /// Callers hold the returned `Arc` for the duration of their call.
    pub fn get(&self) -> Result<Arc<LoadedLibrary>, LoadError> {
        if let Some(loaded) = self.loaded.load_full() {
            return Ok(loaded);
        }
        // One loader at a time; the others wait and then find it loaded.
        let _guard = self
            .load_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(loaded) = self.loaded.load_full() {
            return Ok(loaded);
        }
        let started = std::time::Instant::now();
        let loaded = Arc::new(LoadedLibrary::open(&self.path)?);
        tracing::info!(
            library = %self.path.display(),
            load_ms = started.elapsed().as_secs_f64() * 1e3,
            "library loaded"
        );
        self.loaded.store(Some(Arc::clone(&loaded)));
        Ok(loaded)
    }
}
