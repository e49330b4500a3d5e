//! The route table: config rules bound to live targets, first match wins.

use hyper::HeaderMap;

use crate::config::{Config, ConfigError, Matcher, TargetSpec};
use std::sync::Arc;

use crate::client_limit::ClientLimit;
use crate::metrics::RouteStats;
use crate::targets::native::copy::CopyDir;
use crate::targets::registry::Registry;
use crate::targets::Target;

/// One rule of the table.
#[derive(Debug)]
pub struct Route {
    matcher: Matcher,
    /// What the config says the target is.
    spec: TargetSpec,
    /// The live target.
    pub target: Target,
    /// The key as written in the config.
    pub key: String,
    /// Its line in the config.
    pub line: usize,
    /// What kind of target it is, as metrics label it.
    pub kind: &'static str,
    /// What the route counts (kept across reloads while key and kind stay).
    pub stats: Arc<RouteStats>,
    /// Its responses may be compressed (`compress=off` says no).
    pub compress: bool,
    /// Requests per client (`limit_rate=`; kept across reloads while the
    /// key, the kind and the rate stay).
    pub client_limit: Option<Arc<ClientLimit>>,
    /// Longest wait for the target's answer (`request_timeout=`).
    pub timeout: Option<std::time::Duration>,
}

/// Ordered routes.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// 1 for the config the worker started with, one more for each
    /// accepted reload (0: the empty table of a stopped server).
    pub generation: u64,
}

impl RouteTable {
    /// Binds `config`'s rules to targets. Rules with the same target spec
    /// share one live target; targets already in `previous` (the table
    /// being replaced on reload) are kept as they are (a loaded library
    /// keeps its generation, an upstream group its health state).
    ///
    /// New targets are readied ([`Target::prepare`]): a library route with
    /// options is loaded and its instance built now, so that a library that
    /// takes no options is a config error naming the line.
    pub fn build(
        config: &Config,
        previous: Option<&RouteTable>,
        copies: &Arc<CopyDir>,
    ) -> Result<Self, ConfigError> {
        let mut registry = Registry::reusing(
            previous
                .into_iter()
                .flat_map(|table| table.routes.iter())
                .map(|route| (&route.spec, &route.target)),
            copies,
        );
        let mut routes = Vec::with_capacity(config.rules.len());
        let previous_routes = previous.map_or(&[][..], |table| &table.routes[..]);
        for rule in &config.rules {
            let (target, new) = registry.get_or_create(&rule.target);
            if new {
                target.prepare().map_err(|message| ConfigError::Syntax {
                    path: config.path.clone(),
                    line: rule.line,
                    message,
                })?;
            }
            let kind = kind_of(&rule.target);
            let same = previous_routes
                .iter()
                .find(|route| route.key == rule.key && route.kind == kind);
            let stats = same.map_or_else(Arc::default, |route| Arc::clone(&route.stats));
            let client_limit = rule.options.rate.map(|rate| {
                same.and_then(|route| route.client_limit.as_ref())
                    .filter(|limit| limit.spec() == rate)
                    .map_or_else(|| Arc::new(ClientLimit::new(rate)), Arc::clone)
            });
            routes.push(Route {
                matcher: rule.matcher.clone(),
                spec: rule.target.clone(),
                target,
                key: rule.key.clone(),
                line: rule.line,
                kind,
                stats,
                compress: rule.options.compress,
                client_limit,
                timeout: rule.options.timeout,
            });
        }
        Ok(Self {
            routes,
            generation: previous.map_or(1, |table| table.generation + 1),
        })
    }

    /// The routes in config order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route matching `path` and `headers`.
    pub fn find(&self, path: &str, headers: &HeaderMap) -> Option<&Route> {
        self.routes
            .iter()
            .find(|route| route.matches(path, headers))
    }

    /// Every live target of the table, once each.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(index, route)| {
                !self.routes[..*index]
                    .iter()
                    .any(|earlier| earlier.target.same(&route.target))
            })
            .map(|(_, route)| &route.target)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }
}

/// The kind of target a rule names, as metrics and `/status` label it.
fn kind_of(spec: &TargetSpec) -> &'static str {
    match spec {
        TargetSpec::Library(library) => library.runtime.unwrap_or("library"),
        TargetSpec::Upstream(_) => "upstream",
        TargetSpec::Lambda(_) => "lambda",
        TargetSpec::Sam(_) => "sam",
        TargetSpec::Static(_) => "static",
    }
}

impl Route {
    /// What the route sends requests to, in a few words: the library or
    /// runtime's file, the upstream URLs, the function's name, the template.
    pub fn target_description(&self) -> String {
        match &self.spec {
            // A runtime's route names its script or module first (see
            // `config::cloudflare_worker`): that is what the user wrote.
            TargetSpec::Library(library) => match (library.runtime, library.options.first()) {
                (Some(_), Some((_, file))) => file.clone(),
                _ => library.path.display().to_string(),
            },
            TargetSpec::Upstream(upstream) => upstream
                .servers
                .iter()
                .map(|server| format!("http://{}{}", server.authority, server.base_path))
                .collect::<Vec<_>>()
                .join(", "),
            TargetSpec::Lambda(function) => function.name.clone(),
            TargetSpec::Sam(app) => app.template.display().to_string(),
            TargetSpec::Static(dir) => dir.root.display().to_string(),
        }
    }

    /// The path prefix the route matches.
    pub fn prefix(&self) -> &str {
        match &self.matcher {
            Matcher::PathPrefix(prefix) => prefix,
            Matcher::Header { path_prefix, .. } => path_prefix,
        }
    }

    fn matches(&self, path: &str, headers: &HeaderMap) -> bool {
        match &self.matcher {
            Matcher::PathPrefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Header {
                name,
                value_prefix,
                path_prefix,
            } => {
                path.starts_with(path_prefix.as_str())
                    && headers
                        .get_all(name)
                        .iter()
                        .any(|value| crate::host::rule_value_matches(name, value, value_prefix))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderValue, HOST};
    use std::path::Path;

    #[test]
    fn first_match_wins_and_headers_route() {
        let config = match crate::config::parse(
            Path::new("p.ini"),
            "Host: iam / = iam.so\n/c = c.so\n/ = root.so\n",
        ) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let table =
            RouteTable::build(&config, None, &Arc::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut headers = HeaderMap::new();
        assert_eq!(
            table.find("/c/x", &headers).map(|r| r.target.label()),
            Some("c.so")
        );
        assert_eq!(
            table.find("/x", &headers).map(|r| r.target.label()),
            Some("root.so")
        );
        headers.insert(HOST, HeaderValue::from_static("iamhere"));
        assert_eq!(
            table.find("/c", &headers).map(|r| r.target.label()),
            Some("iam.so")
        );
        let none = RouteTable::build(
            &match crate::config::parse(Path::new("p.ini"), "/a = a.so\n") {
                Ok(c) => c,
                Err(e) => panic!("{e}"),
            },
            None,
            &Arc::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(none.find("/b", &HeaderMap::new()).is_none());

        // A rebuilt table keeps the live targets of the old one.
        let again = RouteTable::build(&config, Some(&table), &Arc::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let old: Vec<_> = table.targets().collect();
        let new: Vec<_> = again.targets().collect();
        assert_eq!(old.len(), 3);
        assert!(old.iter().zip(&new).all(|(a, b)| a.same(b)));
    }
}
