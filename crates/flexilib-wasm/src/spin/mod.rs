//! Spin applications: `wasm:PATH/spin.toml` serves the HTTP routes of a
//! Spin manifest (version 2), each with its component, and gives the
//! components Spin's key-value and variables interfaces
//! (`fermyon:spin/key-value@2.0.0`, `fermyon:spin/variables@2.0.0`).

mod app;
mod bindings;
mod key_value;
mod manifest;
mod route;
mod router;
mod variables;

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::guest::GuestState;
pub use key_value::KeyValueDb;
pub use route::SpinRoute;

/// What a component of an application is given, shared by its requests.
pub struct SpinContext {
    /// Its variables with their values.
    pub variables: BTreeMap<String, String>,
    /// The key-value store labels it may open.
    pub stores: Vec<String>,
    /// The application's key-value database (if any component has stores).
    pub key_value: Option<Arc<KeyValueDb>>,
}

/// One request's Spin state.
pub struct SpinRequest {
    /// The component's grants.
    pub context: Arc<SpinContext>,
    /// Key-value stores the guest holds open.
    pub open_stores: usize,
}

/// Adds the Spin interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    bindings::FlexilibHost::add_to_linker::<GuestState, HasSelf<GuestState>>(linker, |state| state)
}
