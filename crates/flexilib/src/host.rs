//! The host of a request (RFC 9112 §3.2): which one counts, and whether it
//! is valid.
//!
//! * More than one `Host` header, a missing `Host` in an HTTP/1.1 request,
//!   or a value that is not `host[:port]` is refused (400), as RFC 9112
//!   §3.2 requires and nginx does.
//! * With an absolute-form target (`GET http://example.com/x HTTP/1.1`) the
//!   target's authority is the host (RFC 9112 §3.2.2): it replaces the
//!   `Host` header, so that routes, libraries and upstreams all see the
//!   same host.
//! * Header rules compare a `Host` value without regard to ASCII case, as
//!   hostnames are compared.

use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{Request, Version};

/// Why a request's host is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Two or more `Host` header lines.
    #[error("more than one Host header")]
    Duplicate,
    /// An HTTP/1.1 request without `Host`.
    #[error("no Host header")]
    Missing,
    /// A `Host` value that is not `host[:port]`.
    #[error("invalid Host header")]
    Invalid,
    /// An absolute-form target whose authority has userinfo or is not
    /// `host[:port]`.
    #[error("invalid authority in the request target")]
    InvalidTarget,
}

impl HostError {
    /// The body of the 400 response.
    pub fn response_text(self) -> &'static str {
        match self {
            HostError::Duplicate => "400 Bad Request: more than one Host header\n",
            HostError::Missing => "400 Bad Request: no Host header\n",
            HostError::Invalid => "400 Bad Request: invalid Host header\n",
            HostError::InvalidTarget => {
                "400 Bad Request: invalid authority in the request target\n"
            }
        }
    }
}

/// Checks the request's `Host`; for an absolute-form target, makes the
/// target's authority the `Host` header.
pub fn check<B>(request: &mut Request<B>) -> Result<(), HostError> {
    let mut hosts = request.headers().get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(HostError::Duplicate);
    }
    match host {
        Some(value) if !is_valid_host(value.as_bytes()) => return Err(HostError::Invalid),
        Some(_) => {}
        // HTTP/1.0 (and 0.9) clients need not send Host.
        None if request.version() >= Version::HTTP_11 => return Err(HostError::Missing),
        None => {}
    }
    if request.uri().scheme().is_none() {
        return Ok(());
    }
    let authority = request
        .uri()
        .authority()
        .map(|authority| authority.as_str())
        .filter(|authority| is_valid_host(authority.as_bytes()))
        .ok_or(HostError::InvalidTarget)?;
    let value = HeaderValue::from_str(authority).map_err(|_| HostError::InvalidTarget)?;
    request.headers_mut().insert(HOST, value);
    Ok(())
}

/// Whether a header rule's `prefix` matches `value`, a value of header
/// `name`: a plain prefix, compared without regard to ASCII case for `Host`.
pub fn rule_value_matches(name: &HeaderName, value: &HeaderValue, prefix: &str) -> bool {
    let (value, prefix) = (value.as_bytes(), prefix.as_bytes());
    if *name == HOST {
        value
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    } else {
        value.starts_with(prefix)
    }
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): a bracketed
/// IPv6 (or IPvFuture) literal, or a non-empty registered name / IPv4
/// address; the port all digits. A name with `..` is refused too, as nginx
/// does: a library that puts the host into a file path must not be led up
/// a directory.
fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, rest) = value.split_at(end + 1);
        if !is_ip_literal(&literal[1..end]) {
            return false;
        }
        match rest {
            [] => return true,
            [b':', port @ ..] => (literal, port),
            _ => return false,
        }
    } else {
        let (host, port) = match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, &[][..]),
        };
        if !is_reg_name(host) {
            return false;
        }
        (host, port)
    };
    !host.is_empty() && port.iter().all(u8::is_ascii_digit)
}

/// A registered name or IPv4 address: unreserved, sub-delims and
/// percent-encoded octets, not empty, no `..`. One pass over a byte table:
/// every request's `Host` goes through here.
fn is_reg_name(host: &[u8]) -> bool {
    if host.is_empty() {
        return false;
    }
    let mut i = 0;
    let mut after_dot = false;
    while i < host.len() {
        let b = host[i];
        if b == b'%' {
            let hex = host.get(i + 1..i + 3);
            if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            after_dot = false;
            continue;
        }
        if !REG_NAME_BYTES[usize::from(b)] || (b == b'.' && after_dot) {
            return false;
        }
        after_dot = b == b'.';
        i += 1;
    }
    true
}

/// The bytes a registered name may hold as they are (unreserved and
/// sub-delims), by value.
const REG_NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_unreserved(b as u8) || is_sub_delim(b as u8);
        b += 1;
    }
    table
};

/// The inside of `[…]`: an IPv6 address, or `v` HEX `.` then unreserved,
/// sub-delims and `:` (IPvFuture).
fn is_ip_literal(inside: &[u8]) -> bool {
    if let Some(future) = inside
        .strip_prefix(b"v")
        .or_else(|| inside.strip_prefix(b"V"))
    {
        let Some(dot) = future.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, rest) = (&future[..dot], &future[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !rest.is_empty()
            && rest
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, version: Version, hosts: &[&str]) -> Request<()> {
        let mut request = Request::new(());
        *request.uri_mut() = target.parse().expect("target");
        *request.version_mut() = version;
        for host in hosts {
            request.headers_mut().append(
                HOST,
                HeaderValue::from_bytes(host.as_bytes()).expect("value"),
            );
        }
        request
    }

    #[test]
    fn hosts_are_checked() {
        let v11 = Version::HTTP_11;
        let check_one =
            |target: &str, version, hosts: &[&str]| check(&mut request(target, version, hosts));
        assert_eq!(check_one("/", v11, &["a", "b"]), Err(HostError::Duplicate));
        assert_eq!(check_one("/", v11, &["a", "a"]), Err(HostError::Duplicate));
        assert_eq!(check_one("/", v11, &[]), Err(HostError::Missing));
        assert_eq!(check_one("http://a/", v11, &[]), Err(HostError::Missing));
        assert_eq!(check_one("/", Version::HTTP_10, &[]), Ok(()));
        for bad in [
            "", "a/b", "a b", "user@a", "a:x", "a:1:2", "a\\b", "a..b", "[::1", "[::1]x", "[zz]",
            "[v1.]", ":80", "a%zz", "ä",
        ] {
            assert_eq!(
                check_one("/", v11, &[bad]),
                Err(HostError::Invalid),
                "{bad:?}"
            );
        }
        for good in [
            "a",
            "A.Example.ORG",
            "a_b-c~d.example.",
            "a:",
            "a:8069",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8069",
            "[2001:db8::7]",
            "[v1.fe80::a+en1]",
            "caf%C3%A9",
        ] {
            assert_eq!(check_one("/", v11, &[good]), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn an_absolute_form_authority_replaces_the_host() {
        let mut absolute = request("http://Example.com:8080/x?y", Version::HTTP_11, &["other"]);
        assert_eq!(check(&mut absolute), Ok(()));
        assert_eq!(absolute.headers()[HOST], "Example.com:8080");
        assert_eq!(absolute.headers().get_all(HOST).iter().count(), 1);
        // HTTP/1.0 may omit Host; the authority supplies it.
        let mut old = request("http://example.com/", Version::HTTP_10, &[]);
        assert_eq!(check(&mut old), Ok(()));
        assert_eq!(old.headers()[HOST], "example.com");
        let mut userinfo = request("http://u@example.com/", Version::HTTP_11, &["a"]);
        assert_eq!(check(&mut userinfo), Err(HostError::InvalidTarget));
        // Origin form leaves the header alone.
        let mut origin = request("/x", Version::HTTP_11, &["Other"]);
        assert_eq!(check(&mut origin), Ok(()));
        assert_eq!(origin.headers()[HOST], "Other");
    }

    #[test]
    fn host_rules_ignore_case_and_others_do_not() {
        let value = HeaderValue::from_static("IAMHERE:8069");
        assert!(rule_value_matches(&HOST, &value, "iam"));
        assert!(rule_value_matches(&HOST, &value, "IAM"));
        assert!(!rule_value_matches(&HOST, &value, "iamherenot"));
        assert!(rule_value_matches(&HOST, &value, ""));
        let other = HeaderName::from_static("x-mode");
        assert!(!rule_value_matches(&other, &value, "iam"));
        assert!(rule_value_matches(&other, &value, "IAM"));
    }
}
