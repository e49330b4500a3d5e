//! Upstream targets: routes forwarded to other HTTP servers.
//!
//! * [`group`] — the servers of one route: round-robin, passive health
//!   (a server that refused or timed out a connection is skipped for a
//!   cool-down), path rewriting.
//! * [`headers`] — the header rewriting of a reverse proxy (hop-by-hop
//!   headers, `X-Forwarded-*`, `Via`, `Host`).
//! * [`forward`] — sending one request (streaming both ways), the retry of
//!   idempotent requests after a connect failure, and upgrade tunnels.

pub mod forward;
pub mod group;
pub mod headers;

pub use forward::{ProxyClient, ProxySettings};
pub use group::UpstreamGroup;
