//! A Spin application resolved from its manifest: each HTTP route's
//! component with what it is granted (`files` as read-only directories,
//! `environment`, `allowed_outbound_hosts`, key-value store labels, its
//! variables with their values). What the manifest asks for and FlexiLib
//! does not emulate is an error when ignoring it would change what the
//! component does, a warning otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::manifest::{
    Component, ComponentRef, FileMount, Manifest, ManifestError, Source, TriggerRoute,
};
use super::router::Router;
use super::variables::{expand, resolve_app, resolve_component, VariableError};
use crate::config::{Outbound, Preopen};

/// Why an application cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The manifest does not parse.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A table or field of the manifest is wrong or not emulated.
    #[error("{path}: {place}: {message}", path = .path.display())]
    Invalid {
        /// The manifest.
        path: PathBuf,
        /// Where in it (`[component.web] files`).
        place: String,
        /// What is wrong.
        message: String,
    },
}

/// One component of the application.
#[derive(Debug, Clone)]
pub struct AppComponent {
    /// Its id (`[component.ID]`).
    pub id: String,
    /// The `.wasm`, absolute.
    pub source: PathBuf,
    /// Its `files`, read-only.
    pub dirs: Vec<Preopen>,
    /// Its `environment`.
    pub env: Vec<(String, String)>,
    /// Its `allowed_outbound_hosts`.
    pub outbound: Vec<Outbound>,
    /// Its variables, with their values.
    pub variables: BTreeMap<String, String>,
    /// The key-value store labels it may open.
    pub stores: Vec<String>,
}

/// The application.
#[derive(Debug)]
pub struct App {
    /// Its name (`[application] name`).
    pub name: String,
    /// Its components (those some HTTP route leads to).
    pub components: Vec<AppComponent>,
    /// HTTP routes → index in `components`.
    pub router: Router<usize>,
    /// Things the manifest asks for that are ignored.
    pub warnings: Vec<String>,
}

/// Builds [`AppError::Invalid`].
struct Errors<'a> {
    path: &'a Path,
}

impl Errors<'_> {
    fn at(&self, place: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Invalid {
            path: self.path.to_path_buf(),
            place: place.into(),
            message: message.into(),
        }
    }

    fn variables(&self, place: &str, error: &VariableError) -> AppError {
        self.at(place, error.to_string())
    }
}

impl App {
    /// Reads the manifest at `path` with the route's `variable.NAME=`
    /// values.
    pub fn load(path: &Path, given: &[(String, String)]) -> Result<App, AppError> {
        let manifest = Manifest::read(path)?;
        let errors = Errors { path };
        let dir = path.parent().unwrap_or(Path::new("/"));
        let app_vars = resolve_app(&manifest.variables, given)
            .map_err(|e| errors.variables("[variables]", &e))?;
        let mut warnings = Vec::new();
        for kind in manifest.trigger.other.keys() {
            warnings.push(format!(
                "[[trigger.{kind}]] is not served: only HTTP triggers are"
            ));
        }
        if manifest.trigger.http.is_empty() {
            return Err(errors.at("[[trigger.http]]", "the application has no HTTP trigger"));
        }
        let mut components: Vec<AppComponent> = Vec::new();
        let mut router = Router::new();
        for (n, trigger) in manifest.trigger.http.iter().enumerate() {
            let place = format!(
                "[[trigger.http]] #{} ({})",
                n + 1,
                trigger.id.as_deref().unwrap_or("no id")
            );
            if let Some(executor) = &trigger.executor {
                if executor.kind != "spin" {
                    return Err(errors.at(
                        &place,
                        format!(
                            "executor type {:?} is not emulated (only \"spin\")",
                            executor.kind
                        ),
                    ));
                }
            }
            let route = match &trigger.route {
                TriggerRoute::Path(route) => route,
                TriggerRoute::Private { private: true } => continue,
                TriggerRoute::Private { private: false } => {
                    return Err(errors.at(&place, "route = { private = false }: give a path"))
                }
            };
            let (id, component) = match &trigger.component {
                ComponentRef::Id(id) => {
                    let component = manifest.component.get(id).ok_or_else(|| {
                        errors.at(&place, format!("no [component.{id}] in the manifest"))
                    })?;
                    (id.clone(), component)
                }
                ComponentRef::Inline(component) => (
                    trigger
                        .id
                        .clone()
                        .unwrap_or_else(|| format!("inline-component{}", n + 1)),
                    &**component,
                ),
            };
            let index = match components.iter().position(|c| c.id == id) {
                Some(index) => index,
                None => {
                    let resolved = resolve(&errors, dir, &id, component, &app_vars, &mut warnings)?;
                    components.push(resolved);
                    components.len() - 1
                }
            };
            if router.has(route) {
                return Err(errors.at(&place, format!("route {route:?} is given twice")));
            }
            router
                .add(route, index)
                .map_err(|e| errors.at(&place, e.to_string()))?;
        }
        let name = manifest
            .application
            .name
            .clone()
            .unwrap_or_else(|| "spin-app".to_string());
        Ok(App {
            name,
            components,
            router,
            warnings,
        })
    }
}

/// Resolves `[component.ID]`.
fn resolve(
    errors: &Errors<'_>,
    dir: &Path,
    id: &str,
    component: &Component,
    app_vars: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<AppComponent, AppError> {
    let place = |field: &str| format!("[component.{id}] {field}");
    let source = match &component.source {
        Source::Path(path) => dir.join(path),
        Source::Remote(table) => {
            let keys: Vec<&str> = table.keys().map(String::as_str).collect();
            return Err(errors.at(
                place("source"),
                format!(
                    "{{ {} }}: only a local path is served (a url or registry source is not downloaded; fetch it and give its path)",
                    keys.join(", ")
                ),
            ));
        }
    };
    let mut dirs = Vec::new();
    for mount in &component.files {
        dirs.push(mount_dir(dir, mount).map_err(|message| errors.at(place("files"), message))?);
    }
    if !component.exclude_files.is_empty() {
        warnings.push(format!(
            "{}: ignored (files are whole directories here)",
            place("exclude_files")
        ));
    }
    let mut env = Vec::new();
    for (name, value) in &component.environment {
        if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
            return Err(errors.at(
                place("environment"),
                format!("{name:?} is not a usable variable"),
            ));
        }
        env.push((name.clone(), value.clone()));
    }
    let mut outbound = Vec::new();
    for host in &component.allowed_outbound_hosts {
        let host = expand(host, app_vars)
            .map_err(|e| errors.variables(&place("allowed_outbound_hosts"), &e))?;
        outbound.push(
            parse_outbound(&host)
                .map_err(|message| errors.at(place("allowed_outbound_hosts"), message))?,
        );
    }
    for (field, list) in [
        ("sqlite_databases", &component.sqlite_databases),
        ("ai_models", &component.ai_models),
    ] {
        if !list.is_empty() {
            warnings.push(format!(
                "{}: not provided (a component importing the interface fails to link)",
                place(field)
            ));
        }
    }
    if component.dependencies.is_some() {
        warnings.push(format!(
            "{}: component dependencies are not composed here",
            place("dependencies")
        ));
    }
    let variables = resolve_component(&component.variables, app_vars)
        .map_err(|e| errors.variables(&place("variables"), &e))?;
    Ok(AppComponent {
        id: id.to_string(),
        source,
        dirs,
        env,
        outbound,
        variables,
        stores: component.key_value_stores.clone(),
    })
}

/// A `files` entry as a read-only directory. Its source must be a
/// directory inside the application's directory (no `..` or symbolic link
/// out of it).
fn mount_dir(app_dir: &Path, mount: &FileMount) -> Result<Preopen, String> {
    let (source, guest) = match mount {
        FileMount::Pattern(pattern) => {
            if pattern.contains(['*', '?', '[', '{']) {
                return Err(format!(
                    "{pattern:?}: glob patterns are not emulated; mount a directory: {{ source = \"dir\", destination = \"/dir\" }}"
                ));
            }
            (
                pattern.as_str(),
                format!("/{}", pattern.trim_start_matches("./")),
            )
        }
        FileMount::Mapping {
            source,
            destination,
        } => {
            if !destination.starts_with('/') {
                return Err(format!(
                    "destination {destination:?} must be an absolute path"
                ));
            }
            (source.as_str(), destination.clone())
        }
    };
    let inside = app_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", app_dir.display()))?;
    let host = app_dir
        .join(source)
        .canonicalize()
        .map_err(|e| format!("{source:?}: {e}"))?;
    if !host.starts_with(&inside) {
        return Err(format!(
            "{source:?} is outside the application's directory {}",
            inside.display()
        ));
    }
    if !host.is_dir() {
        return Err(format!(
            "{source:?} is not a directory (single files are not emulated; mount the directory that holds them)"
        ));
    }
    Ok(Preopen {
        host,
        guest,
        writable: false,
    })
}

/// `scheme://host[:port]` as Spin writes it: scheme `http`, `https` or
/// `*`; host a name, an address, `*` or `*.domain`; port a number or `*`
/// (none: the scheme's default).
fn parse_outbound(entry: &str) -> Result<Outbound, String> {
    let bad = |why: &str| format!("{entry:?}: {why} (expected scheme://host[:port])");
    let (scheme, rest) = entry.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let tls = match scheme {
        "http" => Some(false),
        "https" => Some(true),
        "*" => None,
        _ => return Err(bad("the scheme is http, https or *")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(bad("a path is not allowed"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host == "self" {
        return Err(bad(
            "a host name, address, `*` or `*.domain` (requests to `self` are not emulated)",
        ));
    }
    let mut outbound = Outbound::host(host, None);
    outbound.tls = tls;
    match port {
        None => {}
        Some("*") => outbound.any_port = true,
        Some(port) => {
            outbound.port = Some(port.parse().map_err(|_| bad("a port is 1 to 65535 or *"))?);
        }
    }
    Ok(outbound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_hosts_as_spin_writes_them() {
        let parse = |entry| parse_outbound(entry).unwrap_or_else(|e| panic!("{e}"));
        let https = parse("https://api.example.com");
        assert!(https.allows("api.example.com", None, true));
        assert!(!https.allows("api.example.com", None, false));
        assert!(!https.allows("api.example.com", Some(8443), true));
        let local = parse("http://127.0.0.1:3000");
        assert!(
            local.allows("127.0.0.1", Some(3000), false) && !local.allows("127.0.0.1", None, false)
        );
        let any = parse("*://*.example.com:*");
        assert!(
            any.allows("a.b.example.com", Some(1), true)
                && any.allows("x.example.com", None, false)
        );
        assert!(
            !any.allows("example.com", None, false) && !any.allows("badexample.com", None, false)
        );
        assert!(parse("https://*").allows("anything", None, true));
        assert!(parse("http://[::1]:8080").allows("[::1]", Some(8080), false));
        for bad in [
            "example.com",
            "ftp://x",
            "http://x/path",
            "http://x:port",
            "http://self",
        ] {
            assert!(parse_outbound(bad).is_err(), "{bad}");
        }
    }
}
