//! The servers of one upstream route.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::http2::Http2Conns;
use super::idle_pool::ServerPool;
use super::tls::UpstreamTls;
use crate::config::{Balance, UpstreamSpec};

/// One upstream server and its health.
#[derive(Debug)]
pub struct UpstreamServer {
    /// `host:port`.
    pub authority: String,
    /// The same as a socket address, when it is one (else it is resolved
    /// at each connect).
    pub addr: Option<SocketAddr>,
    /// The host part of the authority (SNI and verification, unless `sni=`).
    pub host: String,
    /// `https://`.
    pub https: bool,
    /// The TLS client for an https server (`None` for http, or when it
    /// could not be made: then every connect fails, as logged at load).
    pub tls: Option<UpstreamTls>,
    /// Its idle keep-alive connections.
    pub pool: Arc<ServerPool>,
    /// Its HTTP/2 connections (`h2=true`), one per thread.
    pub http2: Http2Conns,
    base_path: String,
    /// Milliseconds since [`epoch`] until which the server is skipped.
    down_until_ms: AtomicU64,
    /// False while it fails its health checks (out of rotation).
    healthy: AtomicBool,
    /// Requests sent to it whose response has not ended (`least_conn`).
    in_flight: Arc<AtomicUsize>,
}

/// The servers of a route and how one is chosen.
#[derive(Debug)]
pub struct UpstreamGroup {
    servers: Vec<UpstreamServer>,
    next: AtomicUsize,
    strip_prefix: bool,
    /// Send the upstream's authority as `Host`.
    pub host_upstream: bool,
    /// Speak HTTP/2 to the servers.
    pub h2: bool,
    balance: Balance,
}

/// One request in flight to a server, counted until this is dropped (with
/// the response body).
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl UpstreamServer {
    /// Takes the server out of rotation (`false`) or puts it back; true
    /// when that changed its state.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::AcqRel) != healthy
    }

    /// The URL scheme, `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl UpstreamGroup {
    /// The group of `spec`'s servers, its health checks started (when it
    /// has `health=`). Routes with the same spec share it (and its health
    /// state), whatever their path prefix.
    pub fn start(spec: &UpstreamSpec) -> Arc<Self> {
        let group = Arc::new(Self::new(spec));
        if let Some(health) = &spec.health {
            super::health::start(&group, health);
        }
        group
    }

    /// The group of `spec`'s servers, without health checks.
    pub fn new(spec: &UpstreamSpec) -> Self {
        let tls = spec
            .servers
            .iter()
            .any(|url| url.https)
            .then(|| UpstreamTls::new(&spec.tls))
            .and_then(|made| {
                made.inspect_err(|error| {
                    tracing::error!(%error, "no TLS client for the https upstreams; their requests fail");
                })
                .ok()
            });
        Self {
            servers: spec
                .servers
                .iter()
                .map(|url| UpstreamServer {
                    authority: url.authority.clone(),
                    addr: url.authority.parse().ok(),
                    host: url
                        .authority
                        .parse::<hyper::http::uri::Authority>()
                        .map(|authority| authority.host().to_string())
                        .unwrap_or_default(),
                    https: url.https,
                    tls: tls.clone().filter(|_| url.https),
                    pool: Arc::default(),
                    http2: Http2Conns::default(),
                    base_path: url.base_path.clone(),
                    down_until_ms: AtomicU64::new(0),
                    healthy: AtomicBool::new(true),
                    in_flight: Arc::default(),
                })
                .collect(),
            next: AtomicUsize::new(0),
            strip_prefix: spec.strip_prefix,
            host_upstream: spec.host_upstream,
            h2: spec.h2,
            balance: spec.balance,
        }
    }

    /// Counts a request to server `index` in flight until the returned
    /// guard is dropped (only for `least_conn`, which reads the counts).
    pub fn track(&self, index: usize) -> Option<InFlight> {
        (self.balance == Balance::LeastConn).then(|| {
            let count = &self.servers[index].in_flight;
            count.fetch_add(1, Ordering::AcqRel);
            InFlight(Arc::clone(count))
        })
    }

    /// The server at `index`.
    pub fn server(&self, index: usize) -> &UpstreamServer {
        &self.servers[index % self.servers.len()]
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// The next server to try, never one in `tried` nor one failing its
    /// health checks: round-robin over the servers not cooling down, or
    /// (`least_conn`) the one of them with the fewest requests in flight,
    /// the first in the list on a tie. If every candidate is cooling down,
    /// the next one in turn anyway (better a try than a certain failure).
    /// `None` when none is left.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        let count = self.servers.len();
        let start = match self.balance {
            Balance::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed),
            Balance::LeastConn => 0,
        };
        let now = now_ms();
        let candidates = (0..count)
            .map(|i| (start + i) % count)
            .filter(|i| !tried.contains(i))
            .filter(|&i| self.servers[i].healthy.load(Ordering::Acquire));
        let mut fallback = None;
        let mut least: Option<(usize, usize)> = None;
        for index in candidates {
            let server = &self.servers[index];
            if server.down_until_ms.load(Ordering::Relaxed) > now {
                fallback.get_or_insert(index);
                continue;
            }
            match self.balance {
                Balance::RoundRobin => return Some(index),
                Balance::LeastConn => {
                    let load = server.in_flight.load(Ordering::Acquire);
                    if least.is_none_or(|(_, fewest)| load < fewest) {
                        least = Some((index, load));
                    }
                }
            }
        }
        least.map(|(index, _)| index).or(fallback)
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
                    https: false,
                })
                .collect(),
            strip_prefix: strip,
            host_upstream: false,
            tls: Default::default(),
            h2: false,
            health: None,
            balance: Balance::RoundRobin,
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
        // A server failing its health checks is not tried at all.
        g.servers[0].set_healthy(false);
        assert_eq!(g.pick(&[2]), Some(1));
        assert_eq!(g.pick(&[1, 2]), None);
    }

    #[test]
    fn least_conn_picks_the_least_busy_server_first_in_order_on_ties() {
        let (mut g, _) = group(&[("a:1", ""), ("b:1", ""), ("c:1", "")], false, "/");
        g.balance = Balance::LeastConn;
        assert_eq!(g.pick(&[]), Some(0));
        let first = g.track(0);
        assert_eq!(g.pick(&[]), Some(1));
        let second = g.track(1);
        let _third = g.track(1);
        assert_eq!(g.pick(&[]), Some(2));
        let _fourth = g.track(2);
        drop(first);
        assert_eq!(g.pick(&[]), Some(0));
        drop(second);
        let _fifth = g.track(0);
        // 1, 1, 1: the first in the list.
        assert_eq!(g.pick(&[]), Some(0));
        assert_eq!(g.pick(&[0]), Some(1));
    }
}
