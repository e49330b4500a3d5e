//! Loading one component for a route: read it, compile it (or load it
//! from the compile cache), link it, and pre-instantiate it as a
//! `wasi:http/proxy` component.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::config::RouteConfig;
use crate::engine::Host;
use crate::guest::GuestState;
use crate::serve::Shared;
use crate::spin::SpinContext;
use crate::{cache, log};

/// Loads `config.module` and links it with `linker`. `active` counts the
/// route's instances (shared by the components of a Spin application).
pub fn load(
    host: &'static Host,
    linker: &Linker<GuestState>,
    config: RouteConfig,
    spin: Option<Arc<SpinContext>>,
    active: Arc<AtomicUsize>,
) -> Result<Arc<Shared>, String> {
    let loaded = cache::load(&host.engine, &config.module, config.cache_dir.as_deref())
        .map_err(|e| e.to_string())?;
    if let Some(note) = &loaded.cache_note {
        log(&config.route, &format!("compile cache not used: {note}"));
    }
    let module = config.module.display().to_string();
    let pre = linker
        .instantiate_pre(&loaded.component)
        .map_err(|e| format!("{module}: cannot link: {e:#}"))?;
    let pre = ProxyPre::new(pre).map_err(|e| {
        format!("{module}: not a wasi:http/proxy component (it must export wasi:http/incoming-handler@0.2.x): {e:#}")
    })?;
    log(
        &config.route,
        &format!(
            "component ready: {module} ({} in {:.1} ms)",
            match loaded.source {
                cache::Source::Cached => "from the compile cache",
                cache::Source::Compiled => "compiled",
            },
            loaded.ms
        ),
    );
    Ok(Arc::new(Shared {
        host,
        outbound: config.outbound.clone().into(),
        config,
        pre,
        spin,
        active,
    }))
}
