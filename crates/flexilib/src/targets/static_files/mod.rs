//! Static files: `KEY = dir:PATH` serves the files under `PATH` for paths
//! below the route's prefix, with `ETag` and `Last-Modified`, conditional
//! requests (304), a single `Range` (206, 416), precompressed `.br`/`.gz`
//! siblings by `Accept-Encoding` (with `Vary`), `index.html` for
//! directories, types by extension, `HEAD`; never a file outside `PATH`.
//!
//! **Blocking work off the I/O thread.** Opening, `fstat` and reading a
//! file are blocking system calls that take microseconds when the page
//! cache has the file and milliseconds or more when it must go to the disk;
//! on an I/O thread that serves a whole core's connections (see
//! `cores.rs`), one such wait holds every connection of that core. So the
//! lookup, the conditions and the read of a small file run as one job on
//! the I/O thread's blocking pool (`flexilib-io-blk`, `spawn_blocking`),
//! and a large file is read in 64 KiB pieces, each such a job, pumped into
//! the response through a [`crate::body_channel`] at the client's pace. That
//! costs a hand-off to another thread and back per request (tens of
//! microseconds), the price of never stalling a core on a disk.
//!
//! * [`lookup`] — the file for a path, beneath the directory only
//!   (`openat2` with `RESOLVE_BENEATH`), `index.html`, precompressed
//!   siblings.
//! * [`content_type`] — the type by extension.
//! * [`validators`] — `ETag`, `Last-Modified`, `If-None-Match`,
//!   `If-Modified-Since`, `Range`, `If-Range`.
//! * [`answer`] — the response for a found file.

mod answer;
mod content_type;
mod lookup;
mod validators;

use hyper::header::{HeaderValue, ALLOW, LOCATION};
use hyper::{Method, Request, Response, StatusCode};

use crate::config::StaticSpec;
use crate::http1::RequestBody;
use crate::respond::{Reply, ReplyBody};
use crate::targets::{CallInfo, Served};
use answer::Conditions;
use lookup::Lookup;

/// A route's directory of static files.
#[derive(Debug)]
pub struct StaticDir {
    spec: StaticSpec,
}

impl StaticDir {
    /// The target for `spec` (nothing is opened until a request comes).
    pub fn new(spec: &StaticSpec) -> Self {
        Self { spec: spec.clone() }
    }
}

/// Serves `request` from `dir`.
pub async fn serve(dir: &StaticDir, request: Request<RequestBody>, call: CallInfo<'_>) -> Served {
    Served::plain(respond(dir, &request, call).await)
}

async fn respond(
    dir: &StaticDir,
    request: &Request<RequestBody>,
    call: CallInfo<'_>,
) -> Response<ReplyBody> {
    let head = match *request.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut response = Reply::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 Method Not Allowed: static files answer GET and HEAD\n",
            )
            .into_response();
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
    };
    let raw_path = request.uri().path();
    // The service has already refused dot segments, controls (NUL among
    // them) and bad escapes (400): what is left is a plain relative path.
    let Some(relative) = relative_path(raw_path, call.route_prefix) else {
        return not_found();
    };
    let slash = raw_path.ends_with('/');
    let conditions = Conditions::from_headers(request.headers(), head);
    let root = dir.spec.root.clone();
    let accept_encoding = conditions.accept_encoding.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let accepts = |coding: &str| {
            accept_encoding
                .as_deref()
                .is_some_and(|header| lookup::accepts(header, coding))
        };
        Ok::<_, std::io::Error>(match lookup::find(&root, &relative, slash, accepts)? {
            Lookup::Found(found) => Outcome::File(answer::prepare(found, &conditions)?),
            Lookup::AddSlash => Outcome::AddSlash,
            Lookup::NotFound => Outcome::NotFound,
        })
    })
    .await;
    match outcome {
        Ok(Ok(Outcome::File(prepared))) => prepared.into_response(),
        Ok(Ok(Outcome::NotFound)) => not_found(),
        Ok(Ok(Outcome::AddSlash)) => add_slash(request),
        Ok(Err(error)) => {
            tracing::warn!(%error, root = %dir.spec.root.display(), "cannot read a static file");
            Reply::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error: the file cannot be read\n",
            )
            .into_response()
        }
        // The blocking pool is gone: the runtime is stopping.
        Err(_) => Reply::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 Service Unavailable: the server is shutting down\n",
        )
        .into_response(),
    }
}

/// What the blocking job found.
enum Outcome {
    File(answer::Prepared),
    AddSlash,
    NotFound,
}

/// The path below the route's prefix, decoded and with empty segments
/// dropped ("" for the directory itself); `None` if a segment could still
/// climb or hold a NUL (the service refuses those before, this is the
/// second lock).
fn relative_path(raw: &str, prefix: &str) -> Option<String> {
    let normalized = crate::request_path::normalize(raw).ok()?;
    let rest = normalized.strip_prefix(prefix)?;
    let mut relative = String::with_capacity(rest.len());
    for segment in rest.split('/').filter(|segment| !segment.is_empty()) {
        if segment == "." || segment == ".." || segment.contains('\0') {
            return None;
        }
        if !relative.is_empty() {
            relative.push('/');
        }
        relative.push_str(segment);
    }
    Some(relative)
}

fn not_found() -> Response<ReplyBody> {
    Reply::text(StatusCode::NOT_FOUND, "404 Not Found\n").into_response()
}

/// `301` to the directory's path with its slash (and the query as sent).
fn add_slash(request: &Request<RequestBody>) -> Response<ReplyBody> {
    let uri = request.uri();
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    let mut response =
        Reply::text(StatusCode::MOVED_PERMANENTLY, "301 Moved Permanently\n").into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_below_the_prefix() {
        assert_eq!(
            relative_path("/static/a/b.txt", "/static"),
            Some("a/b.txt".into())
        );
        assert_eq!(
            relative_path("/static//a///b", "/static/"),
            Some("a/b".into())
        );
        assert_eq!(relative_path("/static/", "/static"), Some(String::new()));
        assert_eq!(
            relative_path("/static/%61.txt", "/static"),
            Some("a.txt".into())
        );
        assert_eq!(relative_path("/static/../etc/passwd", "/static"), None);
        assert_eq!(relative_path("/static/%2e%2e/x", "/static"), None);
        assert_eq!(relative_path("/static/a%00b", "/static"), None);
        assert_eq!(relative_path("/other", "/static"), None);
    }
}
