//! The original FlexiLib sample library (`src/main-lib.zig`), re-created with
//! `flexilib-sdk`.
//!
//! Behaviour of the original:
//!
//! * by default the body is `" N"` (a space and the number of request
//!   headers) and the response carries `X-custom-foo: bar`;
//! * the request headers are scanned in order and the first of these wins:
//!   * `Host` starting with `iam` → body `iam response` (no `X-custom-foo`);
//!   * `x-slow: MS` → sleeps `MS` milliseconds (1000 if `MS` is not a
//!     number; capped at 60 000 so a typo cannot park a handler thread for
//!     days), body `i am slow\n\n` (no `X-custom-foo`).
//!
//! Test hooks, applied to whichever body was chosen:
//!
//! * `x-log-this: TEXT` → `TEXT` is prepended to the body;
//! * `x-status: CODE` → that status (ignored unless a number in `100..=999`);
//! * `x-throw` (any value) → status 500, unless a valid `x-status` is given;
//!   the body is kept;
//! * `x-panic` (any value) → the handler panics with `x-panic requested`,
//!   which the SDK turns into a 500 (the server keeps running).
//!
//! Extensions, replacing the `" N"` body when neither `iam` nor `x-slow`
//! applies (first present wins, `X-custom-foo` is still added):
//!
//! * `x-echo-body` (any value) → the request body;
//! * `x-echo-target` (any value) → `METHOD TARGET`, e.g. `GET /a?b=1`;
//! * `x-big: N` → `N` bytes of `x` (for large responses and the arena cap);
//!   ignored unless `N` is a number up to [`MAX_BIG`].

use std::thread;
use std::time::Duration;

use flexilib_sdk::{export_handler, Request, Response};

export_handler!(handle);

/// Largest body `x-big` produces (256 MiB).
pub const MAX_BIG: usize = 256 << 20;

/// Sleep for `x-slow` values that are not a number, in milliseconds.
const DEFAULT_SLOW_MS: u64 = 1000;

/// Upper bound for `x-slow`, in milliseconds.
const MAX_SLOW_MS: u64 = 60_000;

/// The request handler exported as `handle_request`.
fn handle(req: &Request<'_>) -> Response {
    if req.has_header("x-panic") {
        panic!("x-panic requested");
    }
    let mut resp = original_response(req);
    if let Some(text) = req.header_bytes("x-log-this") {
        resp.body_mut().splice(0..0, text.iter().copied());
    }
    if let Some(status) = requested_status(req) {
        resp.set_status(status);
    }
    resp
}

/// The original sample: the first `Host: iam…` or `x-slow` header decides,
/// otherwise the default response.
fn original_response(req: &Request<'_>) -> Response {
    for (name, value) in req.headers() {
        if name.eq_ignore_ascii_case("host") && value.starts_with(b"iam") {
            return Response::ok("iam response");
        }
        if name.eq_ignore_ascii_case("x-slow") {
            thread::sleep(slow_delay(value));
            return Response::ok("i am slow\n\n");
        }
    }
    default_response(req)
}

/// `" N"` (or an extension's body) plus `X-custom-foo: bar`.
fn default_response(req: &Request<'_>) -> Response {
    let body =
        extension_body(req).unwrap_or_else(|| format!(" {}", req.header_count()).into_bytes());
    Response::ok(body).header("X-custom-foo", "bar")
}

/// The body requested by `x-echo-body`, `x-echo-target` or `x-big`, if any.
fn extension_body(req: &Request<'_>) -> Option<Vec<u8>> {
    if req.has_header("x-echo-body") {
        return Some(req.body().to_vec());
    }
    if req.has_header("x-echo-target") {
        return Some([req.method_bytes(), b" ", req.target_bytes()].concat());
    }
    let size = parse::<usize>(req.header_bytes("x-big")?)?;
    (size <= MAX_BIG).then(|| vec![b'x'; size])
}

/// How long `x-slow: value` sleeps.
fn slow_delay(value: &[u8]) -> Duration {
    let ms = parse::<u64>(value).unwrap_or(DEFAULT_SLOW_MS);
    Duration::from_millis(ms.min(MAX_SLOW_MS))
}

/// The status set by `x-status` (if valid) or `x-throw`.
fn requested_status(req: &Request<'_>) -> Option<u16> {
    let explicit = req
        .header_bytes("x-status")
        .and_then(parse::<u16>)
        .filter(|code| (100..=999).contains(code));
    explicit.or_else(|| req.has_header("x-throw").then_some(500))
}

/// Parses a decimal header value (surrounding whitespace allowed).
fn parse<T: std::str::FromStr>(value: &[u8]) -> Option<T> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flexilib_sdk::testing::{HostResponse, TestRequest};

    fn run(req: TestRequest) -> HostResponse {
        req.dispatch(handle).expect("a response")
    }

    fn get() -> TestRequest {
        TestRequest::new("GET", "/a?b=1")
    }

    #[test]
    fn default_counts_headers() {
        let resp = run(get().header("Host", "localhost").header("Accept", "*/*"));
        assert_eq!((resp.status, resp.body_text()), (200, " 2".into()));
        assert_eq!(resp.header("x-custom-foo"), Some(&b"bar"[..]));
        assert_eq!(run(get()).body_text(), " 0");
    }

    #[test]
    fn iam_host() {
        let resp = run(get().header("Host", "iam.example").header("x-slow", "5000"));
        assert_eq!(resp.body_text(), "iam response");
        assert_eq!(resp.header("x-custom-foo"), None);
    }

    #[test]
    fn slow_first_wins_over_later_iam() {
        let resp = run(get().header("x-slow", "1").header("Host", "iam"));
        assert_eq!(resp.body_text(), "i am slow\n\n");
        assert_eq!(resp.header("x-custom-foo"), None);
        assert_eq!(slow_delay(b"abc"), Duration::from_millis(1000));
        assert_eq!(slow_delay(b"99999999"), Duration::from_millis(MAX_SLOW_MS));
    }

    #[test]
    fn log_status_throw() {
        let resp = run(get().header("x-log-this", "hello"));
        assert_eq!(resp.body_text(), "hello 1");
        let resp = run(get().header("x-throw", "").header("x-log-this", "t"));
        assert_eq!((resp.status, resp.body_text()), (500, "t 2".into()));
        let resp = run(get().header("x-throw", "1").header("x-status", "418"));
        assert_eq!(resp.status, 418);
        let resp = run(get().header("x-status", "42"));
        assert_eq!(resp.status, 200);
        let resp = run(get().header("x-status", "nope").header("x-throw", "1"));
        assert_eq!(resp.status, 500);
    }

    #[test]
    fn panic_becomes_500() {
        let resp = run(get().header("x-panic", "1"));
        assert_eq!(resp.status, 500);
        assert_eq!(resp.body_text(), "handler panicked: x-panic requested");
    }

    #[test]
    fn extensions() {
        let resp = run(TestRequest::new("POST", "/")
            .header("x-echo-body", "")
            .body("abc"));
        assert_eq!(resp.body_text(), "abc");
        assert_eq!(
            run(get().header("x-echo-target", "")).body_text(),
            "GET /a?b=1"
        );
        assert_eq!(run(get().header("x-big", "3")).body_text(), "xxx");
        assert_eq!(run(get().header("x-big", "huge")).body_text(), " 1");
        let capped = get().header("x-big", "100000").arena_limit(50_000);
        assert_eq!(capped.dispatch(handle), None);
    }

    #[test]
    fn through_the_exports() {
        assert_eq!(flexilib_init(1), 0);
        // SAFETY: `handle_request` is this library's export.
        let resp = unsafe { get().header("Host", "x").call(handle_request) };
        assert_eq!(resp.map(|r| r.body_text()), Some(" 1".into()));
    }
}
