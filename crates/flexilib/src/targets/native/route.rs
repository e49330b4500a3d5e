//! A library route: the shared [`NativeLibrary`] and, for libraries that
//! build instances (ABI 2), the route's instance generations.
//!
//! Instances follow the library-reload model: a new instance is built
//! beside the current one when a file it read changes (or the library
//! itself is reloaded), new requests switch to it once it is built, and
//! requests in flight finish on the old one, which is freed after its last
//! request. A build that fails leaves the current instance serving.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::instance::{self, InstanceError, LibraryInstance};
use super::library::Generation;
use super::{LoadError, NativeLibrary, Reloaded};
use crate::config::LibrarySpec;

/// Why a request to the route cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The library could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The route's instance could not be built.
    #[error(transparent)]
    Instance(#[from] InstanceError),
}

/// What a call runs on: a library generation and, for ABI-2 libraries
/// with instances, the route's instance (built on that generation).
pub struct Resolved {
    /// The generation to call.
    pub generation: Arc<Generation>,
    /// The instance, if the library builds them.
    pub instance: Option<Arc<LibraryInstance>>,
}

/// One route to a library.
#[derive(Debug)]
pub struct LibraryRoute {
    /// The library, shared by every route naming its path.
    pub library: Arc<NativeLibrary>,
    /// The route's library spec (path, options).
    pub spec: LibrarySpec,
    instance: ArcSwapOption<LibraryInstance>,
    building: Mutex<BuildState>,
    /// Set when a build while serving found files to watch.
    new_files: AtomicBool,
}

#[derive(Debug, Default)]
struct BuildState {
    /// Number of the last instance built.
    last: u64,
    /// The last failed build: the library generation it ran on and the
    /// files it read. Not retried until one of them changes.
    failed: Option<(u64, Vec<PathBuf>, InstanceError)>,
}

impl LibraryRoute {
    /// A route to `library` with `spec`'s options; nothing is built yet.
    pub fn new(library: Arc<NativeLibrary>, spec: LibrarySpec) -> Self {
        Self {
            library,
            spec,
            instance: ArcSwapOption::empty(),
            building: Mutex::new(BuildState::default()),
            new_files: AtomicBool::new(false),
        }
    }

    /// What the next request runs on, loading the library and building the
    /// instance if this is the first request.
    pub fn resolve(&self) -> Result<Resolved, RouteError> {
        if let Some(instance) = self.instance.load_full() {
            return Ok(Resolved {
                generation: Arc::clone(&instance.generation),
                instance: Some(instance),
            });
        }
        let generation = self.library.get()?;
        if !generation.library.has_instances() {
            if !self.spec.options.is_empty() {
                return Err(InstanceError::NoConstructor(self.spec.path.clone()).into());
            }
            return Ok(Resolved {
                generation,
                instance: None,
            });
        }
        let instance = self.build_if_missing(&generation)?;
        Ok(Resolved {
            generation: Arc::clone(&instance.generation),
            instance: Some(instance),
        })
    }

    /// Loads the library and builds the instance now (for routes with
    /// options, when the config is loaded). A library that cannot be loaded
    /// is not an error here (its requests get 502 until it can be); one that
    /// takes no options is.
    pub fn prepare(&self) -> Result<(), InstanceError> {
        match self.resolve() {
            Ok(_) => Ok(()),
            Err(RouteError::Instance(error @ InstanceError::NoConstructor(_))) => Err(error),
            // Logged where the build failed.
            Err(RouteError::Instance(_)) => Ok(()),
            Err(error) => {
                tracing::warn!(route = %self.spec.route, %error, "library route not ready; its requests get 502 until it is");
                Ok(())
            }
        }
    }

    fn build_if_missing(
        &self,
        generation: &Arc<Generation>,
    ) -> Result<Arc<LibraryInstance>, InstanceError> {
        let mut state = self.building.lock();
        if let Some(instance) = self.instance.load_full() {
            return Ok(instance);
        }
        if let Some((failed_on, _, error)) = &state.failed {
            if *failed_on == generation.number {
                return Err(error.clone());
            }
        }
        let number = state.last + 1;
        match instance::build(generation, &self.spec, number) {
            Ok(instance) => {
                let instance = Arc::new(instance);
                state.last = number;
                state.failed = None;
                self.new_files
                    .store(!instance.depends_on.is_empty(), Ordering::Relaxed);
                tracing::info!(route = %self.spec.route, instance = number, generation = generation.number, "library instance built");
                self.instance.store(Some(Arc::clone(&instance)));
                Ok(instance)
            }
            Err((error, files)) => {
                tracing::warn!(route = %self.spec.route, %error, "route instance failed; the route answers 502 until a file it read changes");
                self.new_files.store(!files.is_empty(), Ordering::Relaxed);
                state.failed = Some((generation.number, files, error.clone()));
                Err(error)
            }
        }
    }

    /// What the route's current instance reports through
    /// `flexilib_instance_gauges` (see [`LibraryInstance::gauges`]);
    /// nothing before the instance is built. An instance being retired
    /// (still finishing requests after a rebuild) is not asked.
    pub fn instance_gauges(&self) -> Vec<(Vec<u8>, Vec<u8>, f64)> {
        self.instance
            .load_full()
            .map(|instance| instance.gauges())
            .unwrap_or_default()
    }

    /// True once after a build found files to watch.
    pub fn take_new_files(&self) -> bool {
        self.new_files.swap(false, Ordering::Relaxed)
    }

    /// Every file whose change matters: the library, and what the current
    /// instance (or a failed build) read.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.spec.path.clone()];
        if let Some(instance) = self.instance.load_full() {
            paths.extend(instance.depends_on.iter().map(|(path, _)| path.clone()));
        }
        let state = self.building.lock();
        if let Some((_, files, _)) = &state.failed {
            paths.extend(files.iter().cloned());
        }
        paths
    }

    /// `path` changed: reload the library if it is the library, then
    /// rebuild the instance if it is stale.
    pub fn file_changed(&self, path: &Path) {
        if path == self.spec.path {
            self.reload_library();
        } else if !self.watched_paths().iter().any(|watched| watched == path) {
            return;
        }
        self.rebuild_if_stale(Some(path));
    }

    /// Looks at the library and every dependency again.
    pub fn recheck(&self) {
        self.reload_library();
        self.rebuild_if_stale(None);
    }

    fn reload_library(&self) {
        // A failure is logged by `reload`; the next event for the file retries.
        if let Reloaded::Loaded(generation) = self.library.reload() {
            tracing::debug!(library = %self.spec.path.display(), generation, "requests switched");
        }
    }

    /// Builds a new instance generation if the current one is on an older
    /// library generation or read a file that changed (or `changed` was a
    /// file of a failed build).
    fn rebuild_if_stale(&self, changed: Option<&Path>) {
        let mut state = self.building.lock();
        let current = self.instance.load_full();
        let Some(current) = current else {
            // Never built, or failed: the next request builds, unless the
            // failure's inputs did not change.
            let retry = match (&state.failed, changed) {
                (Some((_, files, _)), Some(path)) => files.iter().any(|f| f == path),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if retry {
                state.failed = None;
            }
            return;
        };
        let Ok(generation) = self.library.get() else {
            return;
        };
        if generation.number == current.generation.number && !current.is_stale() {
            return;
        }
        if !generation.library.has_instances() {
            tracing::warn!(route = %self.spec.route, library = %self.spec.path.display(), "the new library generation builds no instances; the current instance keeps serving");
            return;
        }
        let number = state.last + 1;
        match instance::build(&generation, &self.spec, number) {
            Ok(instance) => {
                state.last = number;
                tracing::info!(route = %self.spec.route, instance = number, generation = generation.number, "library instance rebuilt; requests switched");
                self.instance.store(Some(Arc::new(instance)));
            }
            Err((error, _)) => {
                tracing::warn!(route = %self.spec.route, serving = current.number, %error, "library instance rebuild failed; the current instance keeps serving");
            }
        }
    }
}
