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
use crate::targets::native::{LoadError, NativeLibrary};
use crate::targets::upstream::forward::ProxyFailure;
use crate::targets::upstream::{ProxyClient, UpstreamGroup};

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
    /// Time allowed to receive a library request's whole body.
    pub body_timeout: std::time::Duration,
    /// The upstream connection pool.
    pub proxy: ProxyClient,
    /// Held by every reload; `true` once shutdown has unloaded everything,
    /// after which nothing may be reloaded.
    pub reloads: std::sync::Mutex<bool>,
}

/// Serves one request; never fails (errors become responses).
pub async fn handle(
    server: Arc<Server>,
    activity: Arc<Activity>,
    mut request: Request<Incoming>,
) -> Result<Response<LoggedBody>, Infallible> {
    let started = Instant::now();
    activity.begin_request();
    // A bad Host (see `host`): 400, and the connection is closed. A path
    // that could leave the prefix it matches, as `/api/..%2fadmin` would
    // (see `request_path`): 400. Routes match the normalised path.
    let checked = crate::host::check(&mut request)
        .map(|()| crate::request_path::normalize(request.uri().path()));
    let (target, rejected) = match checked {
        Ok(Ok(path)) => (
            server
                .routes
                .load()
                .find(&path, request.headers())
                .map(|route| route.target.clone()),
            None,
        ),
        Ok(Err(error)) => (
            None,
            Some(Reply::text(StatusCode::BAD_REQUEST, error.response_text())),
        ),
        Err(error) => (
            None,
            Some(Reply::text(StatusCode::BAD_REQUEST, error.response_text()).closing()),
        ),
    };
    if let Some(Target::Upstream(group)) = target {
        return Ok(proxy(&server, &group, activity, request, started).await);
    }
    let (head, body) = request.into_parts();
    let (reply, usage) = match (rejected, target) {
        (Some(reply), _) => (reply, ArenaUsage::default()),
        (None, Some(Target::Library(library))) => {
            match read_body(body, server.max_body_bytes, server.body_timeout).await {
                Ok(body) => call_library(&server, &library, &head, body).await,
                Err(reply) => (reply, ArenaUsage::default()),
            }
        }
        _ => (
            Reply::text(
                StatusCode::NOT_FOUND,
                "404 Not Found: no route matches this request\n",
            ),
            ArenaUsage::default(),
        ),
    };
    let pending = pending_log(
        &server,
        activity,
        head.method,
        head.uri,
        head.version,
        started,
        usage,
        None,
    );
    Ok(reply.into_response(pending))
}

/// What the access-log line of a request needs, to travel with its
/// response body (and nothing more: the request headers are dropped).
#[allow(clippy::too_many_arguments)]
fn pending_log(
    server: &Server,
    activity: Arc<Activity>,
    method: hyper::Method,
    target: hyper::Uri,
    version: hyper::Version,
    started: Instant,
    usage: ArenaUsage,
    upstream: Option<(String, std::time::Duration)>,
) -> Box<PendingLog> {
    Box::new(PendingLog {
        log: Arc::clone(&server.log),
        activity,
        method,
        target,
        version,
        started,
        ready: Instant::now(),
        usage,
        upstream,
    })
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
    let upstream = forwarded
        .upstream
        .map(|upstream| (upstream, forwarded.upstream_time));
    let pending = pending_log(
        server,
        activity,
        method,
        target,
        version,
        started,
        ArenaUsage::default(),
        upstream,
    );
    match forwarded.response {
        Ok(response) => streamed(response, pending),
        Err(failure) => {
            let body = match failure {
                ProxyFailure::BadGateway => "502 Bad Gateway: the upstream server failed\n",
                ProxyFailure::Timeout => {
                    "504 Gateway Timeout: the upstream server did not answer in time\n"
                }
                ProxyFailure::DotSegment => "400 Bad Request: dot segments in the path\n",
            };
            Reply::text(failure.status(), body).into_response(pending)
        }
    }
}

/// Reads the whole body, enforcing the size limit and the time limit.
async fn read_body(
    body: Incoming,
    limit: u64,
    timeout: std::time::Duration,
) -> Result<Bytes, Reply> {
    let too_large =
        || Reply::text(StatusCode::PAYLOAD_TOO_LARGE, "413 Payload Too Large\n").closing();
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let Ok(collected) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await
    else {
        return Err(Reply::text(
            StatusCode::REQUEST_TIMEOUT,
            "408 Request Timeout: the body did not arrive in time\n",
        )
        .closing());
    };
    match collected {
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
            // A failure is logged once per version of the file.
            if matches!(error, LoadError::Unchanged { .. }) {
                tracing::debug!(%target, %error, "library load failed");
            } else {
                tracing::warn!(%target, %error, "library load failed");
            }
            Reply::text(
                StatusCode::BAD_GATEWAY,
                "502 Bad Gateway: handler library could not be loaded\n",
            )
        }
    };
    (reply, usage)
}
