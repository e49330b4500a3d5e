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
use crate::respond::{LoggedBody, PendingLog, Reply};
use crate::route::{RouteTable, Target};
use crate::target::native::NativeLibrary;

/// State shared by every connection.
pub struct Server {
    /// The live route table (swapped whole on reload).
    pub routes: ArcSwap<RouteTable>,
    /// Limits concurrent library calls.
    pub handlers: HandlerSlots,
    /// The access log.
    pub log: Arc<AccessLog>,
    /// Largest accepted request body.
    pub max_body_bytes: u64,
}

/// Serves one request; never fails (errors become responses).
pub async fn handle(
    server: Arc<Server>,
    activity: Arc<Activity>,
    request: Request<Incoming>,
) -> Result<Response<LoggedBody>, Infallible> {
    let started = Instant::now();
    activity.begin_request();
    let (head, body) = request.into_parts();
    let (reply, usage) = dispatch(&server, &head, body).await;
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
    });
    Ok(reply.into_response(pending))
}

async fn dispatch(server: &Server, head: &Parts, body: Incoming) -> (Reply, ArenaUsage) {
    let target = server
        .routes
        .load()
        .find(head.uri.path(), &head.headers)
        .map(|route| route.target.clone());
    let Some(target) = target else {
        return (
            Reply::text(
                StatusCode::NOT_FOUND,
                "404 Not Found: no route matches this request\n",
            ),
            ArenaUsage::default(),
        );
    };
    let body = match read_body(body, server.max_body_bytes).await {
        Ok(body) => body,
        Err(reply) => return (reply, ArenaUsage::default()),
    };
    match target {
        Target::Library(library) => call_library(server, &library, head, body).await,
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
