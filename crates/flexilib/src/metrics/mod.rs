//! What the server counts for the admin listener ([`crate::admin`]).
//!
//! * [`route_stats`] — per route: requests by status class, latency,
//!   bytes; each [`crate::route::Route`] holds its [`RouteStats`], carried
//!   over a config reload that keeps the route (same key, same kind).
//! * [`latency`] — the atomic histogram behind the latency.
//! * [`instances`] — instance counts read when scraped: Lambda functions'
//!   instances by state, and the gauges libraries report for their route's
//!   instance (`flexilib_instance_gauges`, see `include/flexilib.h`).
//! * [`exposition`] — the Prometheus text the admin listener serves,
//!   written by the `prometheus-client` crate from a snapshot at scrape
//!   time.
//!
//! The request path only adds to atomics when a request's log line is
//! written (see [`crate::request_log`]); everything else is read when
//! scraped.

pub mod exposition;
pub mod instances;
pub mod latency;
pub mod route_stats;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

pub use route_stats::{Outcome, RouteStats};

/// Where the worker is in its life, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Config loaded, listeners not all up yet.
    Starting,
    /// Serving on every listener.
    Ready,
    /// SIGTERM/SIGINT: finishing open requests, new ones get 503.
    Draining,
}

impl Lifecycle {
    /// The word `/readyz` and `/status` use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Draining => "draining",
        }
    }
}

/// Counters of the whole server (routes carry their own).
#[derive(Debug)]
pub struct ServerMetrics {
    /// Requests no route took: a bad host or path (400), no match (404),
    /// refused at shutdown or at the connection cap (503).
    pub unrouted: Arc<RouteStats>,
    config_reloads: AtomicU64,
    config_reload_failures: AtomicU64,
    lifecycle: AtomicU8,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self {
            unrouted: Arc::default(),
            config_reloads: AtomicU64::new(0),
            config_reload_failures: AtomicU64::new(0),
            lifecycle: AtomicU8::new(Lifecycle::Starting as u8),
        }
    }
}

impl ServerMetrics {
    /// A config reload was accepted (`ok`) or rejected.
    pub fn config_reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.config_reloads
        } else {
            &self.config_reload_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Accepted config reloads.
    pub fn config_reloads(&self) -> u64 {
        self.config_reloads.load(Ordering::Relaxed)
    }

    /// Rejected config reloads (the previous routes kept serving).
    pub fn config_reload_failures(&self) -> u64 {
        self.config_reload_failures.load(Ordering::Relaxed)
    }

    /// Moves the worker to `state`.
    pub fn set_lifecycle(&self, state: Lifecycle) {
        self.lifecycle.store(state as u8, Ordering::Relaxed);
    }

    /// Where the worker is.
    pub fn lifecycle(&self) -> Lifecycle {
        match self.lifecycle.load(Ordering::Relaxed) {
            x if x == Lifecycle::Ready as u8 => Lifecycle::Ready,
            x if x == Lifecycle::Draining as u8 => Lifecycle::Draining,
            _ => Lifecycle::Starting,
        }
    }
}
