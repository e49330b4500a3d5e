//! One request: route it, hand it to its target, log it. Nothing here
//! knows what kind of target a route has (see [`crate::targets`]).

use std::convert::Infallible;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::access_log::AccessLog;
use crate::conn::Activity;
use crate::request_log::RequestLog;
use crate::respond::{LoggedBody, Reply};
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
    pub reloads: std::sync::Mutex<bool>,
}

/// Serves one request; never fails (errors become responses).
pub async fn handle(
    server: Arc<Server>,
    activity: Arc<Activity>,
    request: Request<Incoming>,
) -> Result<Response<LoggedBody>, Infallible> {
    let log = RequestLog::start(&server.log, Arc::clone(&activity), &request);
    if activity.draining {
        let reply = Reply::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 Service Unavailable: the server is shutting down\n",
        );
        return Ok(log_reply(log, reply.closing()));
    }
    // `/api/../admin` would match `/api` and then escape it upstream.
    if has_dot_segment(request.uri().path()) {
        let reply = Reply::text(
            StatusCode::BAD_REQUEST,
            "400 Bad Request: dot segments in the path\n",
        );
        return Ok(log_reply(log, reply));
    }
    let routes = server.routes.load_full();
    if crate::targets::lambda::is_invoke(&request) {
        let served = crate::targets::lambda::invoke(&server.env, &routes, request).await;
        return Ok(log.respond(served));
    }
    let Some(route) = routes.find(request.uri().path(), request.headers()) else {
        let reply = Reply::text(
            StatusCode::NOT_FOUND,
            "404 Not Found: no route matches this request\n",
        );
        return Ok(log_reply(log, reply));
    };
    let call = CallInfo {
        peer_ip: &activity.peer_ip,
        route_prefix: route.prefix(),
    };
    let served = route.target.serve(&server.env, request, call).await;
    Ok(log.respond(served))
}

/// A reply made by the server itself, with its log line.
fn log_reply(log: RequestLog, reply: Reply) -> Response<LoggedBody> {
    log.respond(Served::plain(reply.into_response()))
}

/// True if `path` has a `.` or `..` segment, plain or percent-encoded.
fn has_dot_segment(path: &str) -> bool {
    // Most paths have neither a dot nor a percent sign.
    if !path.bytes().any(|b| b == b'.' || b == b'%') {
        return false;
    }
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

#[cfg(test)]
mod tests {
    use super::has_dot_segment;

    #[test]
    fn dot_segments() {
        for bad in [
            "/api/../admin",
            "/api/./x",
            "/..",
            "/a/%2e%2e/b",
            "/a/.%2E/b",
            "/a/%2e",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for good in [
            "/",
            "/api/x",
            "/a/..b",
            "/a/.hidden",
            "/a/b.c",
            "/a/%2e%2ex",
        ] {
            assert!(!has_dot_segment(good), "{good}");
        }
    }
}
