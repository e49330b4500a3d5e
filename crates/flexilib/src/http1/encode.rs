//! Writing a response head, and the framing of its body.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::body::SizeHint;
use hyper::ext::ReasonPhrase;
use hyper::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use hyper::http::response::Parts;
use hyper::{StatusCode, Version};

/// How the response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// No body (HEAD, 1xx, 204, 304): whatever the body holds is not sent.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, length unknown).
    UntilClose,
}

/// Response fields already in wire form (`name: value` lines, each ending
/// in CRLF), validated by whoever made them: a library's response fields
/// go out this way without becoming a `HeaderMap` first.
#[derive(Debug, Default)]
pub struct EncodedFields {
    /// The field lines.
    pub lines: Vec<u8>,
    /// A `content-length` among them.
    pub content_length: Option<u64>,
    /// A `date` among them.
    pub has_date: bool,
}

/// A response body the connection can write; it may carry fields in wire
/// form that go out after the response's own.
pub trait ResponseBody: hyper::body::Body<Data = bytes::Bytes> + Unpin {
    /// Fields to write after the response's `HeaderMap`.
    fn encoded_fields(&self) -> Option<&EncodedFields> {
        None
    }

    /// Takes those fields (HTTP/2 turns them into header-map entries).
    fn take_encoded_fields(&mut self) -> Option<EncodedFields> {
        None
    }
}

impl ResponseBody for http_body_util::Full<bytes::Bytes> {}

/// What the head depends on besides the response.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    /// The request was `HEAD`.
    pub head_request: bool,
    /// The request's version.
    pub version: Version,
    /// The connection may stay open after this response (the client wants
    /// it and the server is not closing); cleared if the response says
    /// `Connection: close` or its body runs to the close.
    pub keep_alive: bool,
}

/// Appends the head of `parts` to `out`; returns how the body is framed.
/// One pass over the fields: the framing fields are noted as they are
/// written, and the server's own are appended after them.
pub fn head(
    parts: &Parts,
    extra: Option<&EncodedFields>,
    hint: &SizeHint,
    exchange: &mut Exchange,
    out: &mut Vec<u8>,
) -> BodyMode {
    let status = parts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    match parts.extensions.get::<ReasonPhrase>() {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        None => out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes()),
    }
    out.extend_from_slice(b"\r\n");

    // `Some(None)`: a length that does not parse.
    let mut length: Option<Option<u64>> = None;
    let mut chunked = false;
    let mut says_close = false;
    let mut has_date = false;
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH {
            length = Some(
                std::str::from_utf8(value.as_bytes())
                    .ok()
                    .and_then(|text| text.trim().parse::<u64>().ok()),
            );
        } else if name == TRANSFER_ENCODING {
            chunked = true;
        } else if name == CONNECTION {
            says_close |= has_token(value.as_bytes(), b"close");
        } else if name == DATE {
            has_date = true;
        }
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(extra) = extra {
        out.extend_from_slice(&extra.lines);
        if let Some(extra_length) = extra.content_length {
            length = Some(Some(extra_length));
        }
        has_date |= extra.has_date;
    }

    let bodiless_status = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let no_body = exchange.head_request || bodiless_status;
    let mode = match length {
        Some(Some(length)) => BodyMode::Length(length),
        // An unreadable length from a library: send to the close.
        Some(None) => BodyMode::UntilClose,
        None if chunked => BodyMode::Chunked,
        None => match hint.exact() {
            Some(exact) => {
                if !bodiless_status {
                    write_field(
                        out,
                        b"content-length",
                        itoa::Buffer::new().format(exact).as_bytes(),
                    );
                }
                BodyMode::Length(exact)
            }
            None if no_body => BodyMode::None,
            None if exchange.version == Version::HTTP_11 => {
                write_field(out, b"transfer-encoding", b"chunked");
                BodyMode::Chunked
            }
            None => BodyMode::UntilClose,
        },
    };
    let mode = if no_body { BodyMode::None } else { mode };
    if mode == BodyMode::UntilClose || says_close {
        exchange.keep_alive = false;
    }
    if !has_date {
        DATE_CACHE.with(|cache| out.extend_from_slice(cache.borrow_mut().line()));
    }
    if !exchange.keep_alive && !says_close && status != StatusCode::SWITCHING_PROTOCOLS {
        write_field(out, b"connection", b"close");
    } else if exchange.keep_alive && exchange.version == Version::HTTP_10 {
        write_field(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
    mode
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

/// Appends the line that starts a chunk of `len` bytes.
pub fn chunk_start(len: usize, out: &mut Vec<u8>) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut left = len;
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[left % 16];
        left /= 16;
        if left == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

/// Appends the end of a chunked body, with `trailers` if any.
pub fn chunked_end(trailers: Option<&hyper::HeaderMap>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// The `date` field line, formatted once a second per thread.
struct DateCache {
    second: u64,
    line: Vec<u8>,
}

impl DateCache {
    fn line(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if second != self.second || self.line.is_empty() {
            self.second = second;
            self.line.clear();
            write_field(
                &mut self.line,
                b"date",
                httpdate::fmt_http_date(now).as_bytes(),
            );
        }
        &self.line
    }
}

thread_local! {
    static DATE_CACHE: RefCell<DateCache> = const {
        RefCell::new(DateCache {
            second: 0,
            line: Vec::new(),
        })
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Response;

    fn encode(
        response: Response<()>,
        hint: SizeHint,
        mut exchange: Exchange,
    ) -> (String, BodyMode, bool) {
        let (parts, ()) = response.into_parts();
        let mut out = Vec::new();
        let mode = head(&parts, None, &hint, &mut exchange, &mut out);
        (String::from_utf8(out).unwrap(), mode, exchange.keep_alive)
    }

    const GET11: Exchange = Exchange {
        head_request: false,
        version: Version::HTTP_11,
        keep_alive: true,
    };

    #[test]
    fn lengths_chunks_and_connection() {
        let (text, mode, keep) = encode(Response::new(()), SizeHint::with_exact(5), GET11);
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: "),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(mode, BodyMode::Length(5));
        assert!(keep);

        let (text, mode, _) = encode(Response::new(()), SizeHint::default(), GET11);
        assert!(text.contains("transfer-encoding: chunked\r\n"));
        assert_eq!(mode, BodyMode::Chunked);

        let old = Exchange {
            version: Version::HTTP_10,
            ..GET11
        };
        let (text, mode, keep) = encode(Response::new(()), SizeHint::default(), old);
        assert_eq!(mode, BodyMode::UntilClose);
        assert!(!keep);
        assert!(text.contains("connection: close\r\n"));

        let (text, _, keep) = encode(Response::new(()), SizeHint::with_exact(1), old);
        assert!(keep);
        assert!(text.contains("connection: keep-alive\r\n"));

        let head_request = Exchange {
            head_request: true,
            ..GET11
        };
        let (text, mode, _) = encode(Response::new(()), SizeHint::with_exact(2), head_request);
        assert!(text.contains("content-length: 2\r\n"));
        assert_eq!(mode, BodyMode::None);

        let mut closing = Response::new(());
        closing
            .headers_mut()
            .insert(CONNECTION, "close".parse().unwrap());
        let (text, _, keep) = encode(closing, SizeHint::with_exact(0), GET11);
        assert!(!keep);
        assert_eq!(text.matches("connection").count(), 1);

        let mut odd = Response::new(());
        *odd.status_mut() = StatusCode::from_u16(999).unwrap();
        let (text, _, _) = encode(odd, SizeHint::with_exact(0), GET11);
        assert!(text.starts_with("HTTP/1.1 999 \r\n"));
    }

    #[test]
    fn chunk_framing() {
        let mut out = Vec::new();
        chunk_start(0x1a2b, &mut out);
        chunk_start(0, &mut out);
        assert_eq!(out, b"1a2b\r\n0\r\n");
    }
}
