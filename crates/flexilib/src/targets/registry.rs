//! Live targets keyed by their config spec, so that a config reload keeps
//! every target whose spec did not change: a loaded library keeps its
//! generation, an upstream group its round-robin position and cool-downs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::native::copy::CopyDir;
use super::native::NativeLibrary;
use super::Target;
use crate::config::TargetSpec;

/// The targets of one route table, one per distinct spec, and the library
/// files they share (one loaded library per path, whatever its routes'
/// options).
#[derive(Debug)]
pub struct Registry {
    targets: HashMap<TargetSpec, Target>,
    libraries: HashMap<PathBuf, Arc<NativeLibrary>>,
    copies: Arc<CopyDir>,
}

impl Registry {
    /// A registry that offers `previous` targets for reuse; new libraries
    /// copy their generations into `copies`.
    pub fn reusing<'a>(
        previous: impl IntoIterator<Item = (&'a TargetSpec, &'a Target)>,
        copies: &Arc<CopyDir>,
    ) -> Self {
        let mut registry = Self {
            targets: HashMap::new(),
            libraries: HashMap::new(),
            copies: Arc::clone(copies),
        };
        for (spec, target) in previous {
            if let Target::Library(route) = target {
                registry
                    .libraries
                    .insert(route.spec.path.clone(), Arc::clone(&route.library));
            }
            registry.targets.insert(spec.clone(), target.clone());
        }
        registry
    }

    /// The live target for `spec`: the existing one, or a new one (then
    /// `true`).
    pub fn get_or_create(&mut self, spec: &TargetSpec) -> (Target, bool) {
        if let Some(target) = self.targets.get(spec) {
            return (target.clone(), false);
        }
        let (libraries, copies) = (&mut self.libraries, &self.copies);
        let target = Target::new(spec, |path| {
            Arc::clone(libraries.entry(path.to_path_buf()).or_insert_with(|| {
                Arc::new(NativeLibrary::new(path.to_path_buf(), Arc::clone(copies)))
            }))
        });
        self.targets.insert(spec.clone(), target.clone());
        (target, true)
    }
}
