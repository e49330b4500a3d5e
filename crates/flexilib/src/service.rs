//! One request: route it, read its body, run its target, build the reply.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};

use crate::access_log::AccessLog;
use crate::arena::ArenaUsage;
use crate::conn::Activity;
use crate::handlers::{HandlerSlots, Outcome};
use crate::respond::{streamed, LoggedBody, PendingLog, Reply};
use crate::route::{RouteTable, Target};
use crate::target::native::NativeLibrary;
use crate::target::upstream::forward::ProxyFailure;
use crate::target::upstream::{ProxyClient, UpstreamGroup};

/// State shared by every connection.
pub struct Server {
    /// The live route table (swapped whole on reload).
    pub routes: ArcSwap<RouteTable>,
    /// Limits concurrent library calls.
    pub handlers: HandlerSlots,
    /// The access log.
    pub log: Arc<AccessLog>,
    /// Largest accepted request body (for library targets; proxied bodies stream).
    pub max_body_bytes: u64,
    /// The upstream connection pool.
    pub proxy: ProxyClient,
}

/// Serves one request; never fails (errors become responses).
pub async fn handle(
    server: Arc<Server>,
    activity: Arc<Activity>,
    request: Request<Incoming>,
) -> Result<Response<LoggedBody>, Infallible> {
    let started = Instant::now();
    activity.begin_request();
    let target = server
        .routes
        .load()
        .find(request.uri().path(), request.headers())
        .map(|route| route.target.clone());
    if let Some(Target::Upstream(group)) = target {
        return Ok(proxy(&server, &group, activity, request, started).await);
    }
    let (head, body) = request.into_parts();
    let (reply, usage) = match target {
        Some(Target::Library(library)) => match read_body(body, server.max_body_bytes).await {
            Ok(body) => call_library(&server, &library, &head, body).await,
            Err(reply) => (reply, ArenaUsage::default()),
        },
        _ => (
            Reply::text(
                StatusCode::NOT_FOUND,
                "404 Not Found: no route matches this request\n",
            ),
            ArenaUsage::default(),
        ),
    };
    // Only what the log line needs travels with the response body.
    let pending = Box::new(PendingLog {
        log: Arc::clone(&server.log),
        activity,
        method: head.method,
        target: head.uri,
        version: head.version,
        started,
        ready: Instant::now(),
        usage,
        upstream: None,
    });
    Ok(reply.into_response(pending))
}

/// Forwards the request to an upstream and streams its response back.
async fn proxy(
    server: &Server,
    group: &UpstreamGroup,
    activity: Arc<Activity>,
    request: Request<Incoming>,
    started: Instant,
) -> Response<LoggedBody> {
    let (method, target, version) = (
        request.method().clone(),
        request.uri().clone(),
        request.version(),
    );
    let forwarded = server
        .proxy
        .forward(group, request, &activity.peer_ip)
        .await;
    let pending = Box::new(PendingLog {
        log: Arc::clone(&server.log),
        activity,
        method,
        target,
        version,
        started,
        ready: Instant::now(),
        usage: ArenaUsage::default(),
        upstream: forwarded
            .upstream
            .map(|upstream| (upstream, forwarded.upstream_time)),
    });
    match forwarded.response {
        Ok(response) => streamed(response, pending),
        Err(failure) => {
            let body = match failure {
                ProxyFailure::BadGateway => "502 Bad Gateway: the upstream server failed\n",
                ProxyFailure::Timeout => {
                    "504 Gateway Timeout: the upstream server did not answer in time\n"
                }
            };
            Reply::text(failure.status(), body).into_response(pending)
        }
    }
}

/// Reads the whole body, enforcing the size limit.
async fn read_body(body: Incoming, limit: u64) -> Result<Bytes, Reply> {
    let too_large =
        || Reply::text(StatusCode::PAYLOAD_TOO_LARGE, "413 Payload Too Large\n").closing();
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => {
            tracing::debug!(%error, "request body unreadable");
            Err(Reply::text(
                StatusCode::BAD_REQUEST,
                "400 Bad Request: unreadable body\n",
            )
            .closing())
        }
    }
}

async fn call_library(
    server: &Server,
    library: &NativeLibrary,
    head: &Parts,
    body: Bytes,
) -> (Reply, ArenaUsage) {
    let (outcome, usage) = server.handlers.call(library, head, body).await;
    let target = &head.uri;
    let reply = match outcome {
        Outcome::Response(response) => Reply::from_library(response).unwrap_or_else(|problem| {
            tracing::warn!(%target, %problem, "library returned an invalid response");
            Reply::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error: invalid response from handler\n",
            )
        }),
        Outcome::CallFailed(error) => {
            tracing::warn!(%target, %error, "library call failed");
            Reply::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error: handler failed\n",
            )
        }
        Outcome::LoadFailed(error) => {
            tracing::warn!(%target, %error, "library load failed");
            Reply::text(
                StatusCode::BAD_GATEWAY,
                "502 Bad Gateway: handler library could not be loaded\n",
            )
        }
    };
    (reply, usage)
}
