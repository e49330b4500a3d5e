//! Spin's HTTP routes: `/path` matches that path only, `/path/...` that
//! path and everything below it, `/...` everything. An exact route wins
//! over a wildcard, and a longer wildcard over a shorter one (as in Spin).
//! Paths are matched without the route's base (the `proxy.ini` key).

/// A route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// The path exactly (trailing `/` ignored).
    Exact(String),
    /// The prefix (no trailing `/`) and anything below it.
    Wildcard(String),
}

/// Why a route is not a pattern.
#[derive(Debug, thiserror::Error)]
#[error("route {0:?}: a route is a path starting with `/`, optionally ending in `/...`")]
pub struct PatternError(String);

impl Pattern {
    /// Parses `route` (`/a/b`, `/a/...`, `/...`).
    pub fn parse(route: &str) -> Result<Pattern, PatternError> {
        if !route.starts_with('/') || route.contains(['?', '#']) {
            return Err(PatternError(route.to_string()));
        }
        if let Some(prefix) = route.strip_suffix("/...") {
            return Ok(Pattern::Wildcard(prefix.trim_end_matches('/').to_string()));
        }
        if route.contains("...") {
            return Err(PatternError(route.to_string()));
        }
        Ok(Pattern::Exact(route.trim_end_matches('/').to_string()))
    }

    /// The route as Spin writes it (`spin-component-route`): the path
    /// without `/...`.
    pub fn component_route(&self) -> &str {
        match self {
            Pattern::Exact(path) | Pattern::Wildcard(path) => path,
        }
    }

    /// How well `path` matches: `None` if it does not, else a rank where
    /// more is better.
    fn rank(&self, path: &str) -> Option<(bool, usize)> {
        let path = path.trim_end_matches('/');
        match self {
            Pattern::Exact(exact) => (exact == path).then_some((true, exact.len())),
            Pattern::Wildcard(prefix) => {
                let rest = path.strip_prefix(prefix.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some((false, prefix.len()))
            }
        }
    }

    /// The part of `path` past the route's prefix (`spin-path-info`).
    pub fn path_info<'p>(&self, path: &'p str) -> &'p str {
        match self {
            Pattern::Exact(_) => "",
            Pattern::Wildcard(prefix) => path.get(prefix.len()..).unwrap_or(""),
        }
    }
}

/// The routes of an application: patterns and what they lead to.
#[derive(Debug)]
pub struct Router<T> {
    routes: Vec<(String, Pattern, T)>,
}

impl<T> Router<T> {
    /// An empty router.
    pub fn new() -> Self {
        Router { routes: Vec::new() }
    }

    /// Adds `route` (as written) leading to `target`.
    pub fn add(&mut self, route: &str, target: T) -> Result<(), PatternError> {
        let pattern = Pattern::parse(route)?;
        self.routes.push((route.to_string(), pattern, target));
        Ok(())
    }

    /// Whether a route with the same pattern is there already.
    pub fn has(&self, route: &str) -> bool {
        Pattern::parse(route).is_ok_and(|pattern| self.routes.iter().any(|(_, p, _)| *p == pattern))
    }

    /// The best route for `path`: (route as written, pattern, target).
    pub fn find(&self, path: &str) -> Option<(&str, &Pattern, &T)> {
        self.routes
            .iter()
            .filter_map(|(raw, pattern, target)| {
                pattern.rank(path).map(|rank| (rank, raw, pattern, target))
            })
            .max_by_key(|(rank, ..)| *rank)
            .map(|(_, raw, pattern, target)| (raw.as_str(), pattern, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beats_wildcard_and_longer_beats_shorter() {
        let mut router = Router::new();
        for (route, target) in [("/...", 1), ("/api/...", 2), ("/api/exact", 3), ("/hi/", 4)] {
            router.add(route, target).unwrap_or_else(|e| panic!("{e}"));
        }
        let target = |path| router.find(path).map(|(_, _, t)| *t);
        assert_eq!(target("/"), Some(1));
        assert_eq!(target("/other/x"), Some(1));
        assert_eq!(target("/api"), Some(2));
        assert_eq!(target("/api/x/y"), Some(2));
        assert_eq!(target("/apix"), Some(1));
        assert_eq!(target("/api/exact"), Some(3));
        assert_eq!(target("/api/exact/"), Some(3));
        assert_eq!(target("/hi"), Some(4));
        let (raw, pattern, _) = router
            .find("/api/x/y")
            .unwrap_or_else(|| panic!("no route"));
        assert_eq!((raw, pattern.path_info("/api/x/y")), ("/api/...", "/x/y"));
        assert!(router.has("/api/exact/"));
        for bad in ["api", "/a/.../b", "/a?b"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        let mut only = Router::new();
        only.add("/only", 0).unwrap_or_else(|e| panic!("{e}"));
        assert!(only.find("/").is_none() && only.find("/only/x").is_none());
    }
}
