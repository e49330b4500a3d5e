//! The servers of one upstream route.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::idle_pool::ServerPool;
use crate::config::UpstreamSpec;

/// One upstream server and its health.
#[derive(Debug)]
pub struct UpstreamServer {
    /// `host:port`.
    pub authority: String,
    /// The same as a socket address, when it is one (else it is resolved
    /// at each connect).
    pub addr: Option<SocketAddr>,
    /// Its idle keep-alive connections.
    pub pool: Arc<ServerPool>,
    base_path: String,
    /// Milliseconds since [`epoch`] until which the server is skipped.
    down_until_ms: AtomicU64,
}

/// The servers of a route, used round-robin.
#[derive(Debug)]
pub struct UpstreamGroup {
    servers: Vec<UpstreamServer>,
    next: AtomicUsize,
    strip_prefix: bool,
    /// Send the upstream's authority as `Host`.
    pub host_upstream: bool,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl UpstreamGroup {
    /// The group of `spec`'s servers. Routes with the same spec share it
    /// (and its health state), whatever their path prefix.
    pub fn new(spec: &UpstreamSpec) -> Self {
        Self {
            servers: spec
                .servers
                .iter()
                .map(|url| UpstreamServer {
                    authority: url.authority.clone(),
                    addr: url.authority.parse().ok(),
                    pool: Arc::default(),
                    base_path: url.base_path.clone(),
                    down_until_ms: AtomicU64::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
            strip_prefix: spec.strip_prefix,
            host_upstream: spec.host_upstream,
        }
    }

    /// The server at `index`.
    pub fn server(&self, index: usize) -> &UpstreamServer {
        &self.servers[index % self.servers.len()]
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// The next server to try: round-robin over healthy servers, never one
    /// in `tried`. If every untried server is cooling down, the next one in
    /// turn anyway (better a try than a certain failure). `None` when all
    /// were tried.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        let count = self.servers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let candidates = (0..count)
            .map(|i| (start + i) % count)
            .filter(|i| !tried.contains(i));
        let mut fallback = None;
        for index in candidates {
            if self.servers[index].down_until_ms.load(Ordering::Relaxed) <= now {
                return Some(index);
            }
            fallback.get_or_insert(index);
        }
        fallback
    }

    /// Each server's authority and whether it is in use (not cooling
    /// down after a failed connection), for the admin listener.
    pub fn health(&self) -> impl Iterator<Item = (&str, bool)> {
        let now = now_ms();
        self.servers.iter().map(move |server| {
            let up = server.down_until_ms.load(Ordering::Relaxed) <= now;
            (server.authority.as_str(), up)
        })
    }

    /// Skips server `index` for `cooldown`.
    pub fn mark_down(&self, index: usize, cooldown: Duration) {
        let until =
            now_ms().saturating_add(u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX));
        self.servers[index]
            .down_until_ms
            .store(until, Ordering::Relaxed);
    }

    /// The path and query to request from server `index` for the client's
    /// `path` (as sent; the route's prefix matched its normalised form) and
    /// `query`, on a route whose path prefix is `prefix`. `None` when
    /// replacing the prefix would make a dot segment: `/api` matches
    /// `/api../x`, and its rest `../x` must not follow the base path as a
    /// segment of its own.
    pub fn upstream_target(
        &self,
        index: usize,
        prefix: &str,
        path: &str,
        query: Option<&str>,
    ) -> Option<String> {
        let server = &self.servers[index];
        let rest = if self.strip_prefix {
            crate::request_path::strip_normalized_prefix(path, prefix).unwrap_or(path)
        } else {
            path
        };
        let mut target = String::with_capacity(server.base_path.len() + rest.len() + 2);
        target.push_str(&server.base_path);
        if !rest.starts_with('/') {
            target.push('/');
        }
        target.push_str(rest);
        // The client's path was checked whole; a stripped one is checked
        // again (a kept one only gained a checked base path in front).
        if self.strip_prefix && crate::request_path::normalize(&target).is_err() {
            return None;
        }
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        Some(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamUrl;

    fn group<'a>(urls: &[(&str, &str)], strip: bool, prefix: &'a str) -> (UpstreamGroup, &'a str) {
        let spec = UpstreamSpec {
            servers: urls
                .iter()
                .map(|(a, b)| UpstreamUrl {
                    authority: (*a).into(),
                    base_path: (*b).into(),
                })
                .collect(),
            strip_prefix: strip,
            host_upstream: false,
        };
        (UpstreamGroup::new(&spec), prefix)
    }

    #[test]
    fn paths_are_rewritten() {
        let (g, prefix) = group(&[("h:1", "/v1")], true, "/api");

        assert_eq!(
            g.upstream_target(0, prefix, "/api/users", Some("a=1"))
                .as_deref(),
            Some("/v1/users?a=1")
        );
        assert_eq!(
            g.upstream_target(0, prefix, "/api", None).as_deref(),
            Some("/v1/")
        );
        // The prefix matched the normalised path; the rest goes as sent.
        assert_eq!(
            g.upstream_target(0, prefix, "/%61pi/a%2Fb", None)
                .as_deref(),
            Some("/v1/a%2Fb")
        );
        assert_eq!(
            g.upstream_target(0, prefix, "//api/x", None).as_deref(),
            Some("/v1/x")
        );
        // A rest that would become a dot segment of its own.
        assert_eq!(g.upstream_target(0, prefix, "/api../x", None), None);
        assert_eq!(g.upstream_target(0, prefix, "/api%2e%2e/x", None), None);
        assert_eq!(g.upstream_target(0, prefix, "/api./x", None), None);
        assert_eq!(
            g.upstream_target(0, prefix, "/api.x/y", None).as_deref(),
            Some("/v1/.x/y")
        );
        let (g, prefix) = group(&[("h:1", "")], false, "/api");
        assert_eq!(
            g.upstream_target(0, prefix, "/api/users", None).as_deref(),
            Some("/api/users")
        );
        assert_eq!(
            g.upstream_target(0, prefix, "/%61pi//x", None).as_deref(),
            Some("/%61pi//x")
        );
        let (g, prefix) = group(&[("h:1", "")], true, "/api/");
        assert_eq!(
            g.upstream_target(0, prefix, "/api/users", None).as_deref(),
            Some("/users")
        );
    }

    #[test]
    fn round_robin_skips_servers_that_are_down() {
        let (g, _) = group(&[("a:1", ""), ("b:1", ""), ("c:1", "")], false, "/");
        let picks: Vec<_> = (0..6).filter_map(|_| g.pick(&[])).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        g.mark_down(1, Duration::from_secs(60));
        let picks: Vec<_> = (0..6).filter_map(|_| g.pick(&[])).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        assert_eq!(
            g.pick(&[0, 2]),
            Some(1),
            "a server cooling down is still tried last"
        );
        assert_eq!(g.pick(&[0, 1, 2]), None);
    }
}
