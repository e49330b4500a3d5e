//! The route table: config rules bound to live targets, first match wins.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::HeaderMap;

use crate::config::{Config, Matcher, TargetSpec};
use crate::targets::native::NativeLibrary;
use crate::targets::upstream::UpstreamGroup;

/// Where a matched request goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A native shared library.
    Library(Arc<NativeLibrary>),
    /// Upstream HTTP servers.
    Upstream(Arc<UpstreamGroup>),
}

/// One rule of the table.
#[derive(Debug)]
pub struct Route {
    matcher: Matcher,
    /// Its target.
    pub target: Target,
}

/// Ordered routes.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Binds `config`'s rules to targets. Rules naming the same library file
    /// share one [`NativeLibrary`]; libraries already in `previous` (the
    /// table being replaced on reload) are kept with their loaded generation.
    pub fn build(config: &Config, previous: Option<&RouteTable>) -> Self {
        let mut libraries: HashMap<PathBuf, Arc<NativeLibrary>> = previous
            .map(|table| {
                table
                    .libraries()
                    .map(|library| (library.path().to_path_buf(), Arc::clone(library)))
                    .collect()
            })
            .unwrap_or_default();
        let routes = config
            .rules
            .iter()
            .map(|rule| {
                let target = match &rule.target {
                    TargetSpec::Library(path) => Target::Library(Arc::clone(
                        libraries
                            .entry(path.clone())
                            .or_insert_with(|| Arc::new(NativeLibrary::new(path.clone()))),
                    )),
                    TargetSpec::Upstream(spec) => {
                        let prefix = match &rule.matcher {
                            Matcher::PathPrefix(prefix) => prefix,
                            Matcher::Header { path_prefix, .. } => path_prefix,
                        };
                        Target::Upstream(Arc::new(UpstreamGroup::new(spec, prefix)))
                    }
                };
                Route {
                    matcher: rule.matcher.clone(),
                    target,
                }
            })
            .collect();
        Self { routes }
    }

    /// The first route matching `path` and `headers`.
    pub fn find(&self, path: &str, headers: &HeaderMap) -> Option<&Route> {
        self.routes
            .iter()
            .find(|route| route.matches(path, headers))
    }

    /// Every library the table routes to, once each.
    pub fn libraries(&self) -> impl Iterator<Item = &Arc<NativeLibrary>> {
        let mut seen = std::collections::HashSet::new();
        self.routes
            .iter()
            .filter_map(move |route| match &route.target {
                Target::Library(library) => seen.insert(Arc::as_ptr(library)).then_some(library),
                Target::Upstream(_) => None,
            })
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }
}

impl Route {
    /// The file name of a library target.
    #[cfg(test)]
    pub fn target_path(&self) -> &str {
        match &self.target {
            Target::Library(library) => library
                .path()
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("?"),
            Target::Upstream(_) => "upstream",
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
        let table = RouteTable::build(&config, None);
        let mut headers = HeaderMap::new();
        assert_eq!(
            table.find("/c/x", &headers).map(|r| r.target_path()),
            Some("c.so")
        );
        assert_eq!(
            table.find("/x", &headers).map(|r| r.target_path()),
            Some("root.so")
        );
        headers.insert(HOST, HeaderValue::from_static("iamhere"));
        assert_eq!(
            table.find("/c", &headers).map(|r| r.target_path()),
            Some("iam.so")
        );
        let none = RouteTable::build(
            &match crate::config::parse(Path::new("p.ini"), "/a = a.so\n") {
                Ok(c) => c,
                Err(e) => panic!("{e}"),
            },
            None,
        );
        assert!(none.find("/b", &HeaderMap::new()).is_none());

        // A rebuilt table keeps the library objects of the old one.
        let again = RouteTable::build(&config, Some(&table));
        let old: Vec<_> = table.libraries().map(Arc::as_ptr).collect();
        let new: Vec<_> = again.libraries().map(Arc::as_ptr).collect();
        assert_eq!(old.len(), 3);
        assert_eq!(old, new);
    }
}
