//! Live targets keyed by their config spec, so that a config reload keeps
//! every target whose spec did not change: a loaded library keeps its
//! generation, an upstream group its round-robin position and cool-downs.

use std::collections::HashMap;

use super::Target;
use crate::config::TargetSpec;

/// The targets of one route table, one per distinct spec.
#[derive(Debug, Default)]
pub struct Registry {
    targets: HashMap<TargetSpec, Target>,
}

impl Registry {
    /// A registry that offers `previous` targets for reuse.
    pub fn reusing<'a>(previous: impl IntoIterator<Item = (&'a TargetSpec, &'a Target)>) -> Self {
        Self {
            targets: previous
                .into_iter()
                .map(|(spec, target)| (spec.clone(), target.clone()))
                .collect(),
        }
    }

    /// The live target for `spec`: the existing one, or a new one.
    pub fn get_or_create(&mut self, spec: &TargetSpec) -> Target {
        if let Some(target) = self.targets.get(spec) {
            return target.clone();
        }
        let target = Target::new(spec);
        self.targets.insert(spec.clone(), target.clone());
        target
    }
}
