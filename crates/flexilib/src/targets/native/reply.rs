//! A library's response made into a [`Reply`]: status, reason and headers
//! validated, framing headers dropped, a streamed body attached.

use hyper::ext::ReasonPhrase;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::{HeaderMap, StatusCode};

use super::LibraryResponse;
use crate::body_channel::BodyReceiver;
use crate::respond::{Reply, ReplyBody};

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
    HeaderValue(HeaderName),
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
    let defaults = !response.as_given();
    let status = match response.status {
        0 => StatusCode::OK,
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
    let too_many = InvalidResponse::TooManyHeaders(response.headers.len());
    let mut headers =
        HeaderMap::try_with_capacity(response.headers.len() + 1).map_err(|_| too_many.clone())?;
    for (name, value) in response.headers {
        let name = HeaderName::from_bytes(&name).map_err(|_| {
            InvalidResponse::HeaderName(String::from_utf8_lossy(&name).into_owned())
        })?;
        let value = HeaderValue::from_maybe_shared(value)
            .map_err(|_| InvalidResponse::HeaderValue(name.clone()))?;
        // Framing and connection management belong to the server; a
        // streamed body may declare its length.
        let length_from_library = name == CONTENT_LENGTH && stream.is_some();
        if (name == CONTENT_LENGTH && !length_from_library)
            || name == TRANSFER_ENCODING
            || name == CONNECTION
        {
            continue;
        }
        headers
            .try_append(name, value)
            .map_err(|_| too_many.clone())?;
    }
    let body = match stream {
        Some(stream) => ReplyBody::Channel(stream),
        None => ReplyBody::Full(response.body),
    };
    Ok(Reply::from_parts(status, reason, headers, body, defaults))
}
