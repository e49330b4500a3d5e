//! WebAssembly components for FlexiLib, as an ABI-2 handler library built
//! only on the public SDK.
//!
//! `/app = wasm:app.wasm` in `proxy.ini` (shorthand for this library with
//! `module=app.wasm`) serves a component exporting
//! `wasi:http/incoming-handler` (the `wasi:http/proxy` world, 0.2.x) as
//! `wasmtime serve` does: a fresh instance per request from an
//! `InstancePre` made when the route is built, in Wasmtime's pooling
//! allocator. The guest is untrusted and sandboxed: no files, environment,
//! sockets or outbound HTTP but what the route's options grant, and limits
//! on its running time (epoch interruption), memory and concurrent
//! instances. Compiled components are cached on disk by content hash.
//!
//! `/app = wasm:PATH/spin.toml` serves a Spin application (manifest
//! version 2) instead: its HTTP routes, each with its component, linked
//! with Spin's `fermyon:spin/key-value@2.0.0` (SQLite) and
//! `fermyon:spin/variables@2.0.0` as well (module `spin`).
//!
//! The route's instance reports, on the server's admin listener
//! (`flexilib_instance_gauges`), the instances running now and allowed and
//! the components loaded: `flexilib_library_wasm_instances_running`,
//! `…_wasm_instances_max`, `…_wasm_components`.
//!
//! Building the route's instance (reading, compiling, linking the
//! component) runs where the server builds instances: when the config is
//! loaded, and on the reload thread when the `.wasm` file changes (a
//! component that fails keeps the old one serving). Requests run on this
//! library's own tokio threads; the server's I/O threads only hand them
//! over (`Call::respond_later`).

mod cache;
mod component;
mod config;
mod engine;
mod guest;
mod serve;
mod spin;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use flexilib_sdk::{
    export_instance, Answer, Call, Gauges, Instance, InstanceConfig, Request, Response,
};

pub use config::{ConfigError, RouteConfig};
use serve::{Shared, Slot};
use spin::SpinRoute;

/// Writes a line to the server's stderr, prefixed with the route.
pub(crate) fn log(route: &str, text: &str) {
    use std::io::Write as _;
    let line = format!("[{route}] {text}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A `wasm:` route: its component, or a Spin application's components,
/// ready to instantiate.
pub enum WasmRoute {
    /// `wasm:PATH.wasm`.
    Component(Arc<Shared>),
    /// `wasm:PATH/spin.toml`.
    Spin(SpinRoute),
}

/// A plain-text answer.
fn text(status: u16, body: &str) -> Answer {
    Response::ok(body.to_string())
        .status(status)
        .header("content-type", "text/plain")
        .into()
}

impl Instance for WasmRoute {
    fn new(config: &InstanceConfig<'_>) -> Result<Self, String> {
        let route = RouteConfig::load(config.route(), config.config_dir(), config.options())
            .map_err(|e| e.to_string())?;
        let host = engine::host().map_err(|e| e.to_string())?;
        if route.is_spin() {
            let depends_on = |path: &std::path::Path| config.depends_on(path);
            return SpinRoute::load(host, &route, &depends_on).map(WasmRoute::Spin);
        }
        // Named before it is read, so that a change after reading still
        // rebuilds, and a component that fails is retried when replaced.
        config.depends_on(&route.module);
        let active = Arc::new(AtomicUsize::new(0));
        component::load(host, &host.linker, route, None, active).map(WasmRoute::Component)
    }

    /// The route's instances running now and allowed, and its components
    /// (relaxed atomic loads and lengths: nothing a request waits on).
    fn gauges(&self, gauges: &mut Gauges<'_>) {
        let (first, components) = match self {
            WasmRoute::Component(shared) => (Some(shared), 1),
            WasmRoute::Spin(app) => (app.components().first(), app.components().len()),
        };
        if let Some(shared) = first {
            // The components of a Spin application share one count and limit.
            gauges.set(
                "wasm_instances_running",
                "WebAssembly instances running now (a fresh one per request)",
                shared.active.load(Ordering::Relaxed) as f64,
            );
            gauges.set(
                "wasm_instances_max",
                "Most WebAssembly instances the route runs at once (max_instances=)",
                shared.config.max_instances as f64,
            );
        }
        gauges.set(
            "wasm_components",
            "Compiled WebAssembly components loaded for the route (one, or a Spin application's)",
            components as f64,
        );
    }

    fn handle(&self, request: &Request<'_>, call: Call) -> Answer {
        let (shared, extra) = match self {
            WasmRoute::Component(shared) => (shared, Vec::new()),
            WasmRoute::Spin(app) => {
                match app.find(request.path(), request.target(), request.header("host")) {
                    Some(found) => found,
                    None => {
                        return text(
                            404,
                            "not found: no route of this Spin application matches\n",
                        )
                    }
                }
            }
        };
        let Some(slot) = Slot::take(shared) else {
            return text(
                503,
                "too many requests are running in this WebAssembly route\n",
            );
        };
        let http_request = match serve::http_request(request, &extra) {
            Ok(made) => made,
            Err(error) => {
                log(
                    &shared.config.route,
                    &format!("request not representable in wasi:http: {error}"),
                );
                return text(400, "bad request\n");
            }
        };
        let (responder, answer) = call.respond_later();
        shared
            .host
            .runtime
            .spawn(serve::run(slot, http_request, responder));
        answer
    }
}

export_instance!(WasmRoute);
