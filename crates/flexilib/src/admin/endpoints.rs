//! What each admin path answers. Everything is computed from counters and
//! the live route table when asked; nothing here is on the request path.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};

use super::AdminState;
use crate::metrics::exposition::{self, RouteRow, Scrape, UNROUTED};
use crate::metrics::instances::{self, LambdaRow, LibraryGauge};
use crate::metrics::Lifecycle;
use crate::targets::Target;

/// The answer to a request for `path` with `method`. It may call into
/// libraries (their gauges): run it on a blocking thread.
pub fn answer(state: &AdminState, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 Method Not Allowed: the admin endpoints answer GET and HEAD\n".into(),
        );
    }
    match path {
        "/metrics" => match exposition::render(scrape(state)) {
            Ok(body) => with_type(StatusCode::OK, exposition::CONTENT_TYPE, body),
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error: cannot encode the metrics\n".into(),
            ),
        },
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match state.server.metrics.lifecycle() {
            Lifecycle::Ready => text(StatusCode::OK, "ready\n".into()),
            other => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("503 Service Unavailable: {}\n", other.name()),
            ),
        },
        "/status" => with_type(
            StatusCode::OK,
            "application/json",
            super::status::json(state).to_string(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "404 Not Found: the admin endpoints are /metrics, /healthz, /readyz and /status\n"
                .into(),
        ),
    }
}

/// The counters now.
fn scrape(state: &AdminState) -> Scrape {
    let server = &state.server;
    let routes = server.routes.load_full();
    let mut rows: Vec<RouteRow> = routes
        .routes()
        .iter()
        .map(|route| RouteRow {
            route: route.key.clone(),
            kind: route.kind,
            stats: route.stats.snapshot(),
        })
        .collect();
    rows.push(RouteRow {
        route: UNROUTED.into(),
        kind: "none",
        stats: server.metrics.unrouted.snapshot(),
    });
    let upstreams = routes
        .routes()
        .iter()
        .filter_map(|route| match &route.target {
            Target::Upstream(group) => Some((route, group)),
            _ => None,
        })
        .flat_map(|(route, group)| {
            group
                .health()
                .map(|(server, up)| (route.key.clone(), server.to_string(), up))
        })
        .collect();
    let lambda: Vec<LambdaRow> = routes
        .routes()
        .iter()
        .flat_map(|route| {
            route
                .target
                .functions()
                .into_iter()
                .map(|function| LambdaRow {
                    route: route.key.clone(),
                    function: function.spec().name.clone(),
                    census: function.census(),
                })
        })
        .collect();
    // Each library route's current instance, asked through its optional
    // `flexilib_instance_gauges` export (here, on a blocking thread).
    let library_gauges: Vec<LibraryGauge> = routes
        .routes()
        .iter()
        .filter_map(|route| match &route.target {
            Target::Library(library) => Some((route, library)),
            _ => None,
        })
        .flat_map(|(route, library)| {
            instances::library_gauges(&route.key, library.instance_gauges())
        })
        .collect();
    Scrape {
        routes: rows,
        lambda,
        library_gauges,
        open_connections: state.open.count() as u64,
        config_reloads: server.metrics.config_reloads(),
        config_reload_failures: server.metrics.config_reload_failures(),
        config_generation: routes.generation,
        ready: server.metrics.lifecycle() == Lifecycle::Ready,
        upstreams,
    }
}

/// The answer when [`answer`] itself failed (it panicked).
pub fn failed() -> Response<Full<Bytes>> {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 Internal Server Error: the admin endpoint failed\n".into(),
    )
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
