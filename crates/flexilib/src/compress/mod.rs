//! Response compression (`COMPRESSION`, on by default; `compress=off` on a
//! route): a response is compressed with zstd, brotli or gzip, as the
//! client's `Accept-Encoding` asks, when
//!
//! * its type is text-like ([`negotiate::compressible`]),
//! * it is not known to be under [`negotiate::MIN_BYTES`] (1 KiB),
//! * it has no `Content-Encoding` already (a precompressed static file, an
//!   upstream's gzip) and no `Cache-Control: no-transform`,
//! * its status is not 206, 304, 204 or 1xx (a range of a compressed body
//!   would be a range of other bytes).
//!
//! Every response of a compressible type not known to be under 1 KiB, to a
//! request with `Accept-Encoding`, gets `Vary: Accept-Encoding`, compressed
//! or not, so caches keep the variants apart (a smaller one is the same
//! whatever the client accepts). A request without the field is not
//! looked at at all: its answer is the identity body every client can take,
//! so a cache that keeps it without `Vary` hands nobody a coding they
//! cannot read (and the request path pays nothing for compression). The compressed
//! body is sent chunked ([`body::CompressedBody`]), compressed on the
//! connection's I/O thread as it goes out: CPU work like parsing, not a wait.
//!
//! * [`negotiate`] — the coding and whether a type compresses.
//! * [`encoder`] — gzip (`flate2`), brotli (`brotli`), zstd (`zstd`).
//! * [`body`] — the body compressed as it streams.
//!
//! Without the `compression` cargo feature, [`apply`] leaves every
//! response as it is.

#[cfg(feature = "compression")]
mod body;
#[cfg(feature = "compression")]
mod encoder;
mod negotiate;

#[cfg(feature = "compression")]
pub use body::CompressedBody;

use hyper::body::Body as _;
use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY,
};
use hyper::StatusCode;

use crate::targets::Served;

/// Compresses `served` for a client that sent `accept_encoding`, when it
/// qualifies (see the module's documentation).
pub fn apply(served: &mut Served, accept_encoding: &HeaderValue) {
    let status = served.response.status();
    if status.is_informational()
        || matches!(
            status,
            StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::NO_CONTENT
        )
    {
        return;
    }
    // A small body is never compressed: its answer does not vary, and the
    // request path pays for nothing more (most small answers stop here).
    // The length announced wins over the body's: a `HEAD` answer has an
    // empty body but the `Content-Length` of its `GET`, and gets the same
    // fields as that `GET` would.
    let headers = served.response.headers();
    let known_length = (!headers.is_empty())
        .then(|| headers.get(CONTENT_LENGTH))
        .flatten()
        .and_then(|value| value.to_str().ok()?.trim().parse().ok())
        .or_else(|| {
            served
                .fields
                .as_ref()
                .and_then(|fields| fields.content_length)
        })
        .or_else(|| served.response.body().size_hint().exact());
    if known_length.is_some_and(|length| length < negotiate::MIN_BYTES) {
        return;
    }
    let seen = Seen::of(served);
    let Some(content_type) = seen.content_type else {
        return;
    };
    if !negotiate::compressible(content_type) || seen.content_encoding {
        return;
    }
    if seen.cache_control.is_some_and(|value| {
        value
            .windows(12)
            .any(|window| window.eq_ignore_ascii_case(b"no-transform"))
    }) {
        return;
    }
    // The answer depends on Accept-Encoding from here on. A library's
    // fields are in wire form already: one more line there costs no map.
    match served.fields.as_mut() {
        Some(fields) => fields.lines.extend_from_slice(b"vary: Accept-Encoding\r\n"),
        None => {
            served
                .response
                .headers_mut()
                .append(VARY, HeaderValue::from_static("Accept-Encoding"));
        }
    }
    let Some(coding) = accept_encoding.to_str().ok().and_then(negotiate::choose) else {
        return;
    };
    compress(served, coding);
}

#[cfg(feature = "compression")]
fn compress(served: &mut Served, coding: negotiate::Coding) {
    let Ok(encoder) = encoder::Encoder::new(coding) else {
        return;
    };
    let headers = served.response.headers_mut();
    headers.remove(CONTENT_LENGTH);
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
    if let Some(fields) = served.fields.as_mut() {
        if fields.content_length.take().is_some() {
            remove_encoded_field(&mut fields.lines, CONTENT_LENGTH.as_str());
        }
    }
    let body = served.response.body_mut();
    let plain = std::mem::replace(body, crate::respond::ReplyBody::Full(bytes::Bytes::new()));
    *body = crate::respond::ReplyBody::Compressed(Box::new(CompressedBody::new(plain, encoder)));
}

#[cfg(not(feature = "compression"))]
fn compress(_served: &mut Served, _coding: negotiate::Coding) {}

/// The fields that decide, from the header map and a library's fields in
/// wire form, in one pass and borrowed: this runs for every response of a
/// route that may compress.
struct Seen<'a> {
    content_type: Option<&'a [u8]>,
    content_encoding: bool,
    cache_control: Option<&'a [u8]>,
}

impl<'a> Seen<'a> {
    fn of(served: &'a Served) -> Self {
        let headers = served.response.headers();
        // A library's map is empty: not even hashed into.
        let mut seen = match headers.is_empty() {
            true => Self {
                content_type: None,
                content_encoding: false,
                cache_control: None,
            },
            false => Self {
                content_type: headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
                content_encoding: headers.contains_key(CONTENT_ENCODING),
                cache_control: headers.get(CACHE_CONTROL).map(HeaderValue::as_bytes),
            },
        };
        let Some(fields) = served.fields.as_ref() else {
            return seen;
        };
        for line in fields.lines.split(|&b| b == b'\n') {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            match name {
                b"content-type" => seen.content_type = seen.content_type.or(Some(value)),
                b"content-encoding" => seen.content_encoding = true,
                b"cache-control" => seen.cache_control = seen.cache_control.or(Some(value)),
                _ => {}
            }
        }
        seen
    }
}

/// Removes every line of the field `name` (lowercase) from `lines`.
#[cfg(feature = "compression")]
fn remove_encoded_field(lines: &mut Vec<u8>, name: &str) {
    let mut kept = Vec::with_capacity(lines.len());
    for line in lines.split_inclusive(|&b| b == b'\n') {
        let is_it = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| &line[..colon] == name.as_bytes());
        if !is_it {
            kept.extend_from_slice(line);
        }
    }
    *lines = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::encode::EncodedFields;
    use crate::respond::ReplyBody;

    #[test]
    fn fields_in_wire_form() {
        let mut served = Served::plain(hyper::Response::new(ReplyBody::Full(Default::default())));
        served.fields = Some(EncodedFields {
            lines: b"content-type: text/html\r\ncache-control: no-transform\r\nx-a: b\r\n".to_vec(),
            content_length: None,
            has_date: false,
        });
        let seen = Seen::of(&served);
        assert_eq!(seen.content_type, Some(&b"text/html"[..]));
        assert_eq!(seen.cache_control, Some(&b"no-transform"[..]));
        assert!(!seen.content_encoding);
        let mut lines = b"content-type: text/html\r\ncontent-length: 5000\r\nx-a: b\r\n".to_vec();
        #[cfg(feature = "compression")]
        {
            remove_encoded_field(&mut lines, "content-length");
            assert_eq!(lines, b"content-type: text/html\r\nx-a: b\r\n");
        }
        lines.clear();
    }
}
