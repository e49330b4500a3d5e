//! Header rewriting between client and upstream (RFC 9110 §7.6).

use hyper::header::{
    HeaderName, HeaderValue, CONNECTION, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};
use hyper::HeaderMap;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const VIA_VALUE: &str = "1.1 flexilib";

/// True when the request asks to switch protocols (`Connection: upgrade`
/// with an `Upgrade` header), e.g. a WebSocket handshake.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers, including those named in `Connection`.
/// With `keep_upgrade`, `Upgrade` and `Connection: upgrade` stay (they must
/// reach the other side of a protocol switch).
///
/// One pass over the names finds what to remove (usually only
/// `connection`), instead of a hash lookup per hop-by-hop header.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    let mut named_in_connection = false;
    for name in headers.keys() {
        if *name == CONNECTION {
            named_in_connection = true;
        } else if is_hop_by_hop(name) && !(keep_upgrade && *name == UPGRADE) {
            doomed.push(name.clone());
        }
    }
    if named_in_connection {
        doomed.extend(
            connection_tokens(headers)
                .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
                .filter(|name| !(keep_upgrade && *name == UPGRADE)),
        );
        doomed.push(CONNECTION);
    }
    for name in doomed {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == TE
        || *name == TRAILER
        || *name == TRANSFER_ENCODING
        || *name == UPGRADE
        || *name == KEEP_ALIVE
        || is_proxy_header(name)
}

/// `Proxy-*` (`Proxy-Authorization`, `Proxy-Authenticate`,
/// `Proxy-Connection`, …) concern the hop to a proxy, and `Proxy` itself is
/// the httpoxy vector (CGI turns it into `HTTP_PROXY`). Names are lowercase.
fn is_proxy_header(name: &HeaderName) -> bool {
    name.as_str()
        .strip_prefix("proxy")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

/// Rewrites a client request's headers for the upstream.
pub fn to_upstream(
    headers: &mut HeaderMap,
    client_ip: &str,
    secure: bool,
    upstream_authority: Option<&str>,
    upgrade: bool,
) {
    let original_host = headers.get(HOST).cloned();
    remove_hop_by_hop(headers, upgrade);
    // X-Forwarded-For: append the client to any list already there.
    let forwarded_for = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(list) if !list.trim().is_empty() => format!("{list}, {client_ip}"),
        _ => client_ip.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    let proto = if secure { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = &original_host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    append_via(headers);
    if let Some(authority) = upstream_authority {
        if let Ok(value) = HeaderValue::from_str(authority) {
            headers.insert(HOST, value);
        }
    }
}

/// Rewrites an upstream response's headers for the client.
pub fn to_client(headers: &mut HeaderMap, upgrade: bool) {
    remove_hop_by_hop(headers, upgrade);
    append_via(headers);
}

fn append_via(headers: &mut HeaderMap) {
    headers.append(VIA, HeaderValue::from_static(VIA_VALUE));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    #[test]
    fn hop_by_hop_and_forwarding_headers() {
        let mut headers = map(&[
            ("host", "example.org"),
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "drop me"),
            ("te", "trailers"),
            ("x-forwarded-for", "10.0.0.1"),
            ("accept", "*/*"),
            ("proxy", "http://evil.example:3128"),
            ("proxy-foo", "1"),
            ("proxy-authorization", "Basic eA=="),
            ("proxy-connection", "keep-alive"),
            ("proxyish", "kept"),
        ]);
        to_upstream(&mut headers, "127.0.0.1", false, None, false);
        for gone in [
            "connection",
            "keep-alive",
            "x-secret",
            "te",
            "upgrade",
            "proxy",
            "proxy-foo",
            "proxy-authorization",
            "proxy-connection",
        ] {
            assert!(!headers.contains_key(gone), "{gone} kept");
        }
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "example.org");
        assert_eq!(headers["host"], "example.org");
        assert_eq!(headers["via"], "1.1 flexilib");
        assert_eq!(headers["accept"], "*/*");
        assert_eq!(headers["proxyish"], "kept");

        let mut headers = map(&[("host", "example.org")]);
        to_upstream(&mut headers, "::1", true, Some("10.1.1.1:8080"), false);
        assert_eq!(headers["host"], "10.1.1.1:8080");
        assert_eq!(headers["x-forwarded-host"], "example.org");
        // A client that came over TLS.
        assert_eq!(headers["x-forwarded-proto"], "https");
    }

    #[test]
    fn proxy_headers_are_removed_from_responses_too() {
        let mut headers = map(&[
            ("proxy-authenticate", "Basic"),
            ("proxy-status", "x"),
            ("content-type", "text/plain"),
        ]);
        to_client(&mut headers, false);
        assert!(!headers.contains_key("proxy-authenticate"));
        assert!(!headers.contains_key("proxy-status"));
        assert_eq!(headers["content-type"], "text/plain");
    }

    #[test]
    fn upgrades_keep_their_headers() {
        let mut headers = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(is_upgrade(&headers));
        to_upstream(&mut headers, "127.0.0.1", false, None, true);
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["sec-websocket-key"], "k");
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
    }
}
