//! A library's response made into a [`Reply`]: status, reason and fields
//! validated, framing fields dropped, a streamed body attached. The fields
//! are written in wire form at once ([`EncodedFields`]), in the order the
//! library gave them, names lowercased.

use hyper::ext::ReasonPhrase;
use hyper::StatusCode;

use super::LibraryResponse;
use crate::body_channel::BodyReceiver;
use crate::http1::encode::EncodedFields;
use crate::respond::{Reply, ReplyBody};

/// Most fields a response may have (what an HTTP header map holds).
const MAX_FIELDS: usize = 32 * 1024;

/// What makes a library's response unusable (it is answered with 500).
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvalidResponse {
    /// Status outside 200..=999 (0 means 200).
    #[error("invalid status {0}")]
    Status(usize),
    /// The reason phrase has characters HTTP does not allow.
    #[error("reason phrase has invalid characters")]
    Reason,
    /// A header name that is not a valid token.
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    /// A header value with invalid bytes.
    #[error("invalid value for header {0}")]
    HeaderValue(String),
    /// More headers than an HTTP header map holds.
    #[error("too many headers ({0})")]
    TooManyHeaders(usize),
}

/// Validates and converts a library's response; `stream` carries the
/// body of a streamed one.
pub fn from_library(
    response: LibraryResponse,
    stream: Option<BodyReceiver>,
) -> Result<Reply, InvalidResponse> {
    convert(response, stream, false)
}

/// A library's `101 Switching Protocols` to a request that asked for an
/// upgrade: its fields as given plus `connection: upgrade`, no body (the
/// connection's bytes go through the upgrade, see `upgrade`).
pub fn upgrade_from_library(response: LibraryResponse) -> Result<Reply, InvalidResponse> {
    convert(response, None, true)
}

fn convert(
    response: LibraryResponse,
    stream: Option<BodyReceiver>,
    upgrade: bool,
) -> Result<Reply, InvalidResponse> {
    let defaults = !response.as_given() && !upgrade;
    let status = match response.status {
        0 => StatusCode::OK,
        101 if upgrade => StatusCode::SWITCHING_PROTOCOLS,
        code @ 200..=999 => u16::try_from(code)
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or(InvalidResponse::Status(code))?,
        code => return Err(InvalidResponse::Status(code)),
    };
    let reason = match response.reason {
        Some(reason) => Some(ReasonPhrase::try_from(reason).map_err(|_| InvalidResponse::Reason)?),
        None => None,
    };
    if response.headers.len() > MAX_FIELDS {
        return Err(InvalidResponse::TooManyHeaders(response.headers.len()));
    }
    let size: usize = response
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 4)
        .sum();
    // Room for the default content type and compression's `vary` line.
    let mut fields = EncodedFields {
        lines: Vec::with_capacity(size + 26 + 23),
        content_length: None,
        has_date: false,
    };
    let mut has_content_type = false;
    for (name, value) in &response.headers {
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(InvalidResponse::HeaderName(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        if !value.iter().all(|&b| is_value_byte(b)) {
            return Err(InvalidResponse::HeaderValue(
                String::from_utf8_lossy(name).to_ascii_lowercase(),
            ));
        }
        // Framing and connection management belong to the server; a
        // streamed body may declare its length.
        if name.eq_ignore_ascii_case(b"content-length") {
            if stream.is_none() {
                continue;
            }
            let length = std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| InvalidResponse::HeaderValue("content-length".into()))?;
            fields.content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"connection")
        {
            continue;
        } else if name.eq_ignore_ascii_case(b"content-type") {
            has_content_type = true;
        } else if name.eq_ignore_ascii_case(b"date") {
            fields.has_date = true;
        }
        fields.lines.extend(name.iter().map(u8::to_ascii_lowercase));
        fields.lines.extend_from_slice(b": ");
        fields.lines.extend_from_slice(value);
        fields.lines.extend_from_slice(b"\r\n");
    }
    if upgrade {
        fields.lines.extend_from_slice(b"connection: upgrade\r\n");
    }
    // The original adds `content-type: text/plain` when a handler set none.
    if defaults && !has_content_type {
        fields
            .lines
            .extend_from_slice(b"content-type: text/plain\r\n");
    }
    let body = match stream {
        Some(stream) => ReplyBody::Channel(stream),
        None => ReplyBody::Full(response.body),
    };
    Ok(Reply::from_encoded(status, reason, fields, body))
}

/// A `tchar` (RFC 9110 §5.6.2): what a field name is made of.
fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// A byte a field value may hold (as `http::HeaderValue` accepts): visible
/// ASCII, space, tab, and obs-text.
fn is_value_byte(byte: u8) -> bool {
    byte == b'\t' || (byte >= 0x20 && byte != 0x7f)
}
