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
//! Building the route's instance (reading, compiling, linking the
//! component) runs where the server builds instances: when the config is
//! loaded, and on the reload thread when the `.wasm` file changes (a
//! component that fails keeps the old one serving). Requests run on this
//! library's own tokio threads; the server's I/O threads only hand them
//! over (`Call::respond_later`).

mod cache;
mod config;
mod engine;
mod guest;
mod serve;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use flexilib_sdk::{export_instance, Answer, Call, Instance, InstanceConfig, Request, Response};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

pub use config::{ConfigError, RouteConfig};
use serve::{Shared, Slot};

/// Writes a line to the server's stderr, prefixed with the route.
pub(crate) fn log(route: &str, text: &str) {
    use std::io::Write as _;
    let line = format!("[{route}] {text}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A `wasm:` route: its component, ready to instantiate.
pub struct WasmRoute {
    shared: Arc<Shared>,
}

impl Instance for WasmRoute {
    fn new(config: &InstanceConfig<'_>) -> Result<Self, String> {
        let route = RouteConfig::load(config.route(), config.config_dir(), config.options())
            .map_err(|e| e.to_string())?;
        // Named before it is read, so that a change after reading still
        // rebuilds, and a component that fails is retried when replaced.
        config.depends_on(&route.module);
        let host = engine::host().map_err(|e| e.to_string())?;
        let loaded = cache::load(&host.engine, &route.module, route.cache_dir.as_deref())
            .map_err(|e| e.to_string())?;
        if let Some(note) = &loaded.cache_note {
            log(&route.route, &format!("compile cache not used: {note}"));
        }
        let module = route.module.display().to_string();
        let pre = host
            .linker
            .instantiate_pre(&loaded.component)
            .map_err(|e| format!("{module}: cannot link: {e:#}"))?;
        let pre = ProxyPre::new(pre).map_err(|e| {
            format!("{module}: not a wasi:http/proxy component (it must export wasi:http/incoming-handler@0.2.x): {e:#}")
        })?;
        log(
            &route.route,
            &format!(
                "component ready: {module} ({} in {:.1} ms)",
                match loaded.source {
                    cache::Source::Cached => "from the compile cache",
                    cache::Source::Compiled => "compiled",
                },
                loaded.ms
            ),
        );
        Ok(WasmRoute {
            shared: Arc::new(Shared {
                host,
                outbound: route.outbound.clone().into(),
                config: route,
                pre,
                active: AtomicUsize::new(0),
            }),
        })
    }

    fn handle(&self, request: &Request<'_>, call: Call) -> Answer {
        let Some(slot) = Slot::take(&self.shared) else {
            return Response::ok("too many requests are running in this WebAssembly route\n")
                .status(503)
                .header("content-type", "text/plain")
                .into();
        };
        let http_request = match serve::http_request(request) {
            Ok(made) => made,
            Err(error) => {
                log(
                    &self.shared.config.route,
                    &format!("request not representable in wasi:http: {error}"),
                );
                return Response::ok("bad request\n")
                    .status(400)
                    .header("content-type", "text/plain")
                    .into();
            }
        };
        let (responder, answer) = call.respond_later();
        self.shared
            .host
            .runtime
            .spawn(serve::run(slot, http_request, responder));
        answer
    }
}

export_instance!(WasmRoute);
