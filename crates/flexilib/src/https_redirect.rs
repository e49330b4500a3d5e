//! `HTTPS_REDIRECT=on`: a request on the plain port is answered
//! `308 Permanent Redirect` to the same URL on https (`TLS_PORT`): same
//! host (its port replaced), path and query. 308 keeps the method and the
//! body, as a POST must not turn into a GET.

use hyper::header::{HeaderValue, HOST, LOCATION};
use hyper::{Request, StatusCode};

use crate::http1::RequestBody;
use crate::respond::Reply;

/// The redirect for `request` to `port`.
pub fn reply(request: &Request<RequestBody>, port: u16) -> Reply {
    // The Host was checked (see `host`): present and well formed.
    let host = request
        .headers()
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .map_or("localhost", host_without_port);
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let location = if port == 443 {
        format!("https://{host}{target}")
    } else {
        format!("https://{host}:{port}{target}")
    };
    let mut reply = Reply::text(
        StatusCode::PERMANENT_REDIRECT,
        "308 Permanent Redirect: this server answers over https\n",
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        reply.insert_header(LOCATION, value);
    }
    reply
}

/// `example.com` of `example.com:80`, `[::1]` of `[::1]:80`.
fn host_without_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    host.split(':').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::host_without_port;

    #[test]
    fn ports_are_dropped() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
    }
}
