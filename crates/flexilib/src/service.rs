//! One request: route it, hand it to its target, log it. Nothing here
//! knows what kind of target a route has (see [`crate::targets`]).

use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper::header::ACCEPT_ENCODING;
use hyper::{Request, Response, StatusCode};

use crate::access_log::AccessLog;
use crate::conn::Activity;
use crate::http1::RequestBody;
use crate::metrics::ServerMetrics;
use crate::request_log::{LoggedBody, RequestLog};
use crate::respond::Reply;
use crate::route::RouteTable;
use crate::targets::{CallInfo, Served, TargetEnv};

/// State shared by every connection.
pub struct Server {
    /// The live route table (swapped whole on reload).
    pub routes: ArcSwap<RouteTable>,
    /// What targets need to serve requests.
    pub env: TargetEnv,
    /// The access log.
    pub log: Arc<AccessLog>,
    /// Held by every reload; `true` once shutdown has unloaded everything,
    /// after which nothing may be reloaded.
    pub reloads: parking_lot::Mutex<bool>,
    /// What the admin listener reports (routes keep their own counters).
    pub metrics: ServerMetrics,
    /// Responses may be compressed (`COMPRESSION`).
    pub compression: bool,
    /// `HTTPS_REDIRECT`: plain-port requests are sent to this TLS port.
    pub https_redirect: std::sync::OnceLock<u16>,
}

/// Serves one request; never fails (errors become responses).
pub async fn handle(
    server: Arc<Server>,
    activity: Arc<Activity>,
    mut request: Request<RequestBody>,
) -> Response<LoggedBody> {
    let mut log = RequestLog::start(&server.log, Arc::clone(&activity), &request);
    // Replies of the server's own are counted as no route's.
    let log_reply = |mut log: RequestLog, reply: Reply| {
        log.count_in(&server.metrics.unrouted);
        log.respond(Served::plain(reply.into_response()))
    };
    if let Some(refusal) = activity.refusal {
        let reply = Reply::text(StatusCode::SERVICE_UNAVAILABLE, refusal.response_text());
        return log_reply(log, reply.closing());
    }
    // A bad Host (see `host`): 400, and the connection is closed.
    if let Err(error) = crate::host::check(&mut request) {
        let reply = Reply::text(StatusCode::BAD_REQUEST, error.response_text());
        return log_reply(log, reply.closing());
    }
    // ACME HTTP-01 validation, before the redirect to https.
    #[cfg(feature = "acme")]
    if let Some(reply) = crate::tls::acme::challenge::answer(&request) {
        return log_reply(log, reply);
    }
    if let Some(port) = server.https_redirect.get() {
        if !activity.secure {
            return log_reply(log, crate::https_redirect::reply(&request, *port));
        }
    }
    // A path that could leave the prefix it matches, as `/api/..%2fadmin`
    // would (see `request_path`): 400. Routes match the normalised path.
    let routes = server.routes.load_full();
    let route = match crate::request_path::normalize(request.uri().path()) {
        Ok(path) => routes.find(&path, request.headers()),
        Err(error) => {
            let reply = Reply::text(StatusCode::BAD_REQUEST, error.response_text());
            return log_reply(log, reply);
        }
    };
    let Some(route) = route else {
        let reply = Reply::text(
            StatusCode::NOT_FOUND,
            "404 Not Found: no route matches this request\n",
        );
        return log_reply(log, reply);
    };
    log.count_in(&route.stats);
    if let Some(limit) = &route.client_limit {
        if let Err(wait) = limit.take(&activity.peer_ip) {
            return log.respond(Served::plain(too_many_requests(wait)));
        }
    }
    let call = CallInfo {
        peer_ip: &activity.peer_ip,
        route_prefix: route.prefix(),
        secure: activity.secure,
    };
    // A client that names no coding gets the body as the target made it,
    // at no cost (see `compress`).
    let accept_encoding = (server.compression && route.compress)
        .then(|| request.headers().get(ACCEPT_ENCODING).cloned())
        .flatten();
    let serving = route.target.serve(&server.env, request, call);
    let mut served = match route.timeout {
        None => serving.await,
        Some(limit) => match tokio::time::timeout(limit, serving).await {
            Ok(served) => served,
            Err(_) => {
                tracing::warn!(route = %route.key, timeout_s = limit.as_secs_f64(), "the route's target did not answer in time");
                Served::plain(
                    Reply::text(
                        StatusCode::GATEWAY_TIMEOUT,
                        "504 Gateway Timeout: the route's target did not answer in time\n",
                    )
                    .into_response(),
                )
            }
        },
    };
    if let Some(accept_encoding) = accept_encoding {
        crate::compress::apply(&mut served, &accept_encoding);
    }
    log.respond(served)
}

/// 429 for a client past a route's `limit_rate`, saying when to come back
/// (whole seconds, at least 1).
fn too_many_requests(wait: std::time::Duration) -> Response<crate::respond::ReplyBody> {
    let mut response = Reply::text(
        StatusCode::TOO_MANY_REQUESTS,
        "429 Too Many Requests: slow down\n",
    )
    .into_response();
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    response.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from(seconds),
    );
    response
}
