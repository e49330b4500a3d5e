//! A `wasm:PATH/spin.toml` route: the application's components loaded
//! and linked (with Spin's interfaces), and each request sent to the
//! component of the best-matching `[[trigger.http]]` route, with the
//! headers Spin adds (`spin-full-url`, `spin-path-info`, …).

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use super::app::App;
use super::key_value::KeyValueDb;
use super::router::Router;
use super::SpinContext;
use crate::config::RouteConfig;
use crate::engine::Host;
use crate::serve::Shared;
use crate::{component, log};

/// A Spin application behind a route.
pub struct SpinRoute {
    /// The route's path prefix (the `proxy.ini` key), without a trailing
    /// `/`: Spin's base path.
    base: String,
    router: Router<usize>,
    components: Vec<Arc<Shared>>,
}

/// A request's component and the headers Spin gives it.
pub type Found<'a> = (&'a Arc<Shared>, Vec<(&'static str, String)>);

impl SpinRoute {
    /// Loads the application of `route.module` (a manifest). `depends_on`
    /// is told every file the route is built from (manifest and
    /// components), before it is read.
    pub fn load(
        host: &'static Host,
        route: &RouteConfig,
        depends_on: &dyn Fn(&Path),
    ) -> Result<SpinRoute, String> {
        depends_on(&route.module);
        let app = App::load(&route.module, &route.variables).map_err(|e| e.to_string())?;
        for warning in &app.warnings {
            log(
                &route.route,
                &format!("{}: {warning}", route.module.display()),
            );
        }
        let state_dir = route.state_dir.clone().unwrap_or_else(|| {
            route
                .module
                .parent()
                .unwrap_or(Path::new("/"))
                .join(".spin")
        });
        let key_value = if app.components.iter().any(|c| !c.stores.is_empty()) {
            Some(Arc::new(
                KeyValueDb::open(&state_dir).map_err(|e| e.to_string())?,
            ))
        } else {
            None
        };
        let active = Arc::new(AtomicUsize::new(0));
        let mut components = Vec::new();
        for resolved in app.components {
            depends_on(&resolved.source);
            let mut config = route.clone();
            config.module = resolved.source;
            config.dirs.extend(resolved.dirs);
            config.env.extend(resolved.env);
            config.outbound.extend(resolved.outbound);
            let context = SpinContext {
                variables: resolved.variables,
                stores: resolved.stores,
                key_value: key_value.clone(),
            };
            let shared = component::load(
                host,
                &host.spin_linker,
                config,
                Some(Arc::new(context)),
                active.clone(),
            )
            .map_err(|e| format!("Spin component `{}`: {e}", resolved.id))?;
            components.push(shared);
        }
        log(
            &route.route,
            &format!(
                "Spin application `{}` ready: {} component(s), key-value state in {}",
                app.name,
                components.len(),
                if key_value.is_some() {
                    state_dir.display().to_string()
                } else {
                    "(none: no key_value_stores)".to_string()
                }
            ),
        );
        Ok(SpinRoute {
            base: base_path(&route.route),
            router: app.router,
            components,
        })
    }

    /// The application's components, loaded and linked.
    pub fn components(&self) -> &[Arc<Shared>] {
        &self.components
    }

    /// The component for a request to `path` (no query) on `host`, and
    /// the headers Spin adds; `None`: no route matches.
    pub fn find(&self, path: &str, target: &str, host: Option<&str>) -> Option<Found<'_>> {
        let inner = match path.strip_prefix(self.base.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => path,
        };
        let inner = if inner.is_empty() { "/" } else { inner };
        let (raw, pattern, index) = self.router.find(inner)?;
        let shared = self.components.get(*index)?;
        let base = if self.base.is_empty() {
            "/"
        } else {
            &self.base
        };
        let headers = vec![
            (
                "spin-full-url",
                format!("http://{}{target}", host.unwrap_or("localhost")),
            ),
            ("spin-path-info", pattern.path_info(inner).to_string()),
            ("spin-matched-route", format!("{}{raw}", self.base)),
            ("spin-raw-component-route", raw.to_string()),
            (
                "spin-component-route",
                pattern.component_route().to_string(),
            ),
            ("spin-base-path", base.to_string()),
        ];
        Some((shared, headers))
    }
}

/// The path part of a route key (`/app`, `example.com/app`), without a
/// trailing `/` (empty for `/`).
fn base_path(route: &str) -> String {
    route
        .find('/')
        .map_or("", |start| &route[start..])
        .trim_end_matches('/')
        .to_string()
}
