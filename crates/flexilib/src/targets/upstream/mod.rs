//! Upstream targets: routes forwarded to other HTTP servers.
//!
//! * [`group`] — the servers of one upstream spec: round-robin or least
//!   connections, passive health (a server that refused or timed out a
//!   connection is skipped for a cool-down), path rewriting.
//! * [`health`] — active health checks (`health=`), one task per group.
//! * [`stream`] — the byte stream to a server: TCP, or TLS for https.
//! * [`tls`] — the rustls client of https upstreams (`ca=`, `sni=`,
//!   `insecure_skip_verify=`).
//! * [`http2`] — HTTP/2 to upstreams (`h2=true`), one multiplexed
//!   connection per server per thread.
//! * [`headers`] — the header rewriting of a reverse proxy (hop-by-hop
//!   headers, `X-Forwarded-*`, `Via`, `Host`).
//! * [`forward`] — sending one request (streaming both ways), the retry of
//!   idempotent requests after a connect failure.
//! * [`connection`] — one upstream connection (hyper's `client::conn::http1`),
//!   driven by the request's own task, no task of its own.
//! * [`idle_pool`] — a server's idle connections, per thread, closed after the
//!   idle timeout.
//! * [`response_body`] — the response body that drives its connection and pools it
//!   once read to the end.
//! * [`tunnel`] — upgrade (WebSocket) tunnels.

pub mod connection;
pub mod forward;
pub mod group;
pub mod headers;
pub mod health;
pub mod http2;
pub mod idle_pool;
pub mod request_body;
pub mod response_body;
pub mod stream;
pub mod tls;
pub mod tunnel;

pub use forward::{ProxyClient, ProxySettings};
pub use group::UpstreamGroup;

use crate::http1::RequestBody;
use hyper::Request;

use crate::access_log::TargetNote;
use crate::arena::ArenaUsage;
use crate::respond::{Reply, ReplyBody};
use crate::targets::{CallInfo, Served, TargetEnv};
use forward::ProxyFailure;

/// Forwards `request` to one of `group`'s servers and streams the answer back.
pub async fn serve(
    env: &TargetEnv,
    group: &UpstreamGroup,
    request: Request<RequestBody>,
    call: CallInfo<'_>,
) -> Served {
    let forwarded = env
        .proxy
        .forward(group, call.route_prefix, request, call.peer_ip, call.secure)
        .await;
    let note = forwarded.upstream.map(|server| TargetNote {
        kind: "upstream",
        who: server,
        time: forwarded.upstream_time,
    });
    let response = match forwarded.response {
        Ok(response) => response.map(|body| ReplyBody::Stream(Box::new(body))),
        Err(failure) => {
            let body = match failure {
                ProxyFailure::BadGateway => "502 Bad Gateway: the upstream server failed\n",
                ProxyFailure::Timeout => {
                    "504 Gateway Timeout: the upstream server did not answer in time\n"
                }
                ProxyFailure::DotSegment => "400 Bad Request: dot segments in the path\n",
                ProxyFailure::ClientBody => "400 Bad Request: unreadable body\n",
            };
            Reply::text(failure.status(), body).into_response()
        }
    };
    Served {
        response,
        usage: ArenaUsage::default(),
        note,
        fields: None,
    }
}
