//! Parsing a request head.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri, Version};

/// Header fields a head may have before a heap-allocated table is needed.
const INLINE_FIELDS: usize = 256;

/// Limits on a request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Most bytes in a head (request line, fields and the empty line).
    pub max_bytes: usize,
    /// Most header fields.
    pub max_fields: usize,
}

/// Why a head was refused; each maps to the status answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Longer than `MAX_HEADER_BYTES` or more fields than `MAX_HEADER_COUNT`.
    #[error("request head too large")]
    TooLarge,
    /// The request line alone is longer than `MAX_HEADER_BYTES`: the
    /// target is too long.
    #[error("request target too long")]
    UriTooLong,
    /// Not HTTP/1.x syntax.
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    /// A `Transfer-Encoding` other than `chunked`.
    #[error("unsupported transfer coding")]
    UnsupportedCoding,
}

impl HeadError {
    /// The status to answer with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedCoding => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The body of the answer.
    pub fn response_text(self) -> &'static str {
        match self {
            Self::TooLarge => "431 Request Header Fields Too Large\n",
            Self::UriTooLong => "414 URI Too Long\n",
            Self::Malformed(_) => "400 Bad Request: malformed request\n",
            Self::UnsupportedCoding => "501 Not Implemented: unsupported transfer coding\n",
        }
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed head: the request (without its body) and what the connection
/// needs to know about it.
#[derive(Debug)]
pub struct Head {
    /// Method, target, version and fields.
    pub request: Request<()>,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// The client wants the connection kept open after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: send `100 Continue` before reading the body.
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` field, in HTTP/1.1 (an
    /// HTTP/1.0 request's `Upgrade` is ignored: RFC 9110 §7.8).
    pub upgrade: bool,
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, read
/// more. On success the head's bytes are split off `buf` (the fields share
/// them), leaving what follows (a body, a pipelined request); on an error
/// `buf` is left as it was. `spans` is
/// the connection's scratch list, kept between requests.
pub fn parse(
    buf: &mut BytesMut,
    limits: HeadLimits,
    spans: &mut Vec<FieldSpan>,
) -> Result<Option<Head>, HeadError> {
    spans.clear();
    let scanned = if limits.max_fields <= INLINE_FIELDS {
        let mut table = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; INLINE_FIELDS];
        scan(buf, limits, &mut table[..limits.max_fields], spans)?
    } else {
        let mut table = Vec::with_capacity(limits.max_fields);
        table.resize_with(limits.max_fields, MaybeUninit::uninit);
        scan(buf, limits, &mut table, spans)?
    };
    let Some(scanned) = scanned else {
        return Ok(None);
    };
    let head = buf.split_to(scanned.head_len).freeze();
    build(&head, scanned, spans).map(Some).inspect_err(|_| {
        // A refused head stays in the buffer, for its log line.
        let rest = buf.split();
        buf.extend_from_slice(&head);
        buf.extend_from_slice(&rest);
    })
}

/// Where a field is in the head, as offsets (the head is frozen into
/// shared bytes only once parsing succeeded).
pub struct FieldSpan {
    name: (usize, usize),
    value: (usize, usize),
}

/// A complete head, located in the buffer.
struct Scanned {
    head_len: usize,
    method: Method,
    target: (usize, usize),
    version: Version,
}

fn scan<'b>(
    buf: &'b [u8],
    limits: HeadLimits,
    table: &mut [MaybeUninit<httparse::Header<'b>>],
    spans: &mut Vec<FieldSpan>,
) -> Result<Option<Scanned>, HeadError> {
    let mut parsed = httparse::Request::new(&mut []);
    let status = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        buf,
        table,
    );
    let head_len = match status {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= limits.max_bytes {
                Err(too_large(buf, limits.max_bytes))
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(error) => return Err(HeadError::Malformed(describe(error))),
    };
    if head_len > limits.max_bytes {
        return Err(too_large(buf, limits.max_bytes));
    }
    let base = buf.as_ptr() as usize;
    let offset = |part: &[u8]| {
        let start = part.as_ptr() as usize - base;
        (start, start + part.len())
    };
    let method = Method::from_bytes(parsed.method.unwrap_or("").as_bytes())
        .map_err(|_| HeadError::Malformed("invalid method"))?;
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    spans.extend(parsed.headers.iter().map(|field| FieldSpan {
        name: offset(field.name.as_bytes()),
        value: offset(field.value),
    }));
    Ok(Some(Scanned {
        head_len,
        method,
        target: offset(parsed.path.unwrap_or("").as_bytes()),
        version,
    }))
}

/// A head over `max_bytes`: 414 when the request line alone does not fit
/// (as nginx answers a request line longer than its buffers), else 431.
fn too_large(buf: &[u8], max_bytes: usize) -> HeadError {
    if buf[..buf.len().min(max_bytes)].contains(&b'\n') {
        HeadError::TooLarge
    } else {
        HeadError::UriTooLong
    }
}

fn describe(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "invalid field name",
        httparse::Error::HeaderValue => "invalid field value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many fields",
        httparse::Error::Version => "invalid HTTP version",
    }
}

fn build(head: &Bytes, scanned: Scanned, fields: &[FieldSpan]) -> Result<Head, HeadError> {
    let Scanned {
        method,
        target,
        version,
        ..
    } = scanned;
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.1))
        .map_err(|_| HeadError::Malformed("invalid request target"))?;
    let mut headers = HeaderMap::with_capacity(fields.len());
    let mut length: Option<u64> = None;
    // `Content-Length` given more than once, or as a list of equal values.
    let mut length_repeated = false;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    let mut upgrade_token = false;
    let mut upgrade_field = false;
    let mut expect_continue = false;
    for field in fields {
        let name = HeaderName::from_bytes(&head[field.name.0..field.name.1])
            .map_err(|_| HeadError::Malformed("invalid field name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(field.value.0..field.value.1))
            .map_err(|_| HeadError::Malformed("invalid field value"))?;
        match name {
            hyper::header::CONTENT_LENGTH => {
                let parsed = parse_length(value.as_bytes())?;
                if length.is_some_and(|seen| seen != parsed) {
                    return Err(HeadError::Malformed("conflicting Content-Length"));
                }
                length_repeated |= length.is_some() || value.as_bytes().contains(&b',');
                length = Some(parsed);
            }
            hyper::header::TRANSFER_ENCODING => {
                if version == Version::HTTP_10 {
                    return Err(HeadError::Malformed("Transfer-Encoding in HTTP/1.0"));
                }
                // Only `chunked`, once, and last: anything else is refused.
                let last = value
                    .as_bytes()
                    .rsplit(|&b| b == b',')
                    .next()
                    .map(trim)
                    .unwrap_or_default();
                if chunked || !last.eq_ignore_ascii_case(b"chunked") {
                    return Err(HeadError::UnsupportedCoding);
                }
                if value.as_bytes().contains(&b',') {
                    return Err(HeadError::UnsupportedCoding);
                }
                chunked = true;
            }
            hyper::header::CONNECTION => {
                for token in value.as_bytes().split(|&b| b == b',').map(trim) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        upgrade_token = true;
                    }
                }
            }
            hyper::header::UPGRADE => upgrade_field = true,
            hyper::header::EXPECT => {
                expect_continue = value.as_bytes().eq_ignore_ascii_case(b"100-continue");
            }
            _ => {}
        }
        headers.append(name, value);
    }
    let framing = match (chunked, length) {
        (true, Some(_)) => {
            return Err(HeadError::Malformed(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (true, None) => BodyFraming::Chunked,
        (false, Some(0)) | (false, None) => BodyFraming::Empty,
        (false, Some(length)) => BodyFraming::Length(length),
    };
    if let (true, Some(length)) = (length_repeated, length) {
        // One value, as targets and upstreams expect (`2, 2` → `2`).
        headers.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Head {
        request,
        framing,
        keep_alive: !close && (version == Version::HTTP_11 || keep_alive),
        expect_continue: expect_continue && version == Version::HTTP_11,
        upgrade: upgrade_token && upgrade_field && version == Version::HTTP_11,
    })
}

/// A `Content-Length` value: digits only (a list of equal values, as some
/// clients send, is accepted).
fn parse_length(value: &[u8]) -> Result<u64, HeadError> {
    let mut result: Option<u64> = None;
    for part in value.split(|&b| b == b',').map(trim) {
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(HeadError::Malformed("invalid Content-Length"));
        }
        let parsed = part
            .iter()
            .fold(0u64, |acc, &digit| acc * 10 + u64::from(digit - b'0'));
        if result.is_some_and(|seen| seen != parsed) {
            return Err(HeadError::Malformed("conflicting Content-Length"));
        }
        result = Some(parsed);
    }
    result.ok_or(HeadError::Malformed("invalid Content-Length"))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |end| end + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_bytes: 8192,
        max_fields: 100,
    };

    fn parse_str(raw: &str) -> Result<Option<Head>, HeadError> {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse(&mut buf, LIMITS, &mut Vec::new())
    }

    #[test]
    fn a_complete_head_leaves_the_body_in_the_buffer() {
        let mut buf = BytesMut::from(&b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-A: 1\r\nx-a: 2\r\n\r\nabcGET"[..]);
        let head = parse(&mut buf, LIMITS, &mut Vec::new()).unwrap().unwrap();
        assert_eq!(&buf[..], b"abcGET");
        assert_eq!(head.request.method(), Method::POST);
        assert_eq!(head.request.uri().path(), "/a");
        assert_eq!(head.request.uri().query(), Some("b=1"));
        assert_eq!(head.framing, BodyFraming::Length(3));
        assert!(head.keep_alive);
        let values: Vec<_> = head.request.headers().get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_fail() {
        assert!(parse_str("GET / HTTP/1.1\r\nHost: x\r\n")
            .unwrap()
            .is_none());
        let long = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(9000));
        assert_eq!(parse_str(&long).unwrap_err(), HeadError::TooLarge);
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..101 {
            many.push_str(&format!("x-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(parse_str(&many).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn framing_and_connection_rules() {
        let head = parse_str("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive);
        let head = parse_str("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
        let head = parse_str("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
        let head = parse_str(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked);
        assert!(head.expect_continue);
        let head = parse_str("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.upgrade);
        // RFC 9110 §7.8: an HTTP/1.0 request's `Upgrade` is ignored.
        let head = parse_str("GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.upgrade);
        for bad in [
            "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "NOT HTTP AT ALL\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
        ] {
            assert!(
                matches!(parse_str(bad), Err(HeadError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_str("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap_err(),
            HeadError::UnsupportedCoding
        );
    }

    #[test]
    fn a_request_line_over_the_limit_is_414_and_fields_over_it_431() {
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
        assert_eq!(parse_str(&long_target).unwrap_err(), HeadError::UriTooLong);
        assert_eq!(HeadError::UriTooLong.status(), StatusCode::URI_TOO_LONG);
        // Still incomplete, but the request line alone is past the limit.
        let partial = format!("GET /{}", "a".repeat(9000));
        assert_eq!(parse_str(&partial).unwrap_err(), HeadError::UriTooLong);
        let long_field = format!("GET /short HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(9000));
        assert_eq!(parse_str(&long_field).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn repeated_equal_content_lengths_become_one() {
        for raw in [
            "POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab",
            "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
        ] {
            let head = parse_str(raw).unwrap().unwrap();
            assert_eq!(head.framing, BodyFraming::Length(2));
            let values: Vec<_> = head
                .request
                .headers()
                .get_all("content-length")
                .iter()
                .collect();
            assert_eq!(values, ["2"], "{raw}");
        }
        let head = parse_str("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab")
            .unwrap()
            .unwrap();
        assert_eq!(head.request.headers()["content-length"], "2");
    }
}
