//! The response for a file that was found: which status (200, 206, 304,
//! 416), which fields, and its body (read at once when small, pumped in
//! pieces when large).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{
    HeaderName, HeaderValue, ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED,
    RANGE, VARY,
};
use hyper::{HeaderMap, Response, StatusCode};

use super::lookup::Found;
use super::validators::{self, RangeRequest};
use crate::respond::ReplyBody;

/// Bodies up to this size are read in the lookup's job and sent whole.
const READ_AT_ONCE: u64 = 256 * 1024;
/// The pieces a larger body is read in.
const PIECE: u64 = 64 * 1024;
/// Bytes of a large body waiting for the client at most (plus a piece).
const BUFFERED: usize = 256 * 1024;

/// The request's fields that decide the answer, owned so the blocking job
/// can take them.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// `Accept-Encoding`.
    pub accept_encoding: Option<String>,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    range: Option<String>,
    if_range: Option<String>,
    head: bool,
}

impl Conditions {
    /// The fields of `headers` (the request was `HEAD` if `head`).
    pub fn from_headers(headers: &HeaderMap, head: bool) -> Self {
        let get = |name: HeaderName| {
            let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
            let first = values.next()?.to_string();
            // A field sent on several lines is one comma-separated list.
            Some(values.fold(first, |all, next| format!("{all}, {next}")))
        };
        Self {
            accept_encoding: get(ACCEPT_ENCODING),
            if_none_match: get(IF_NONE_MATCH),
            if_modified_since: get(IF_MODIFIED_SINCE),
            range: get(RANGE),
            if_range: get(IF_RANGE),
            head,
        }
    }
}

/// The answer, ready to become a response on the I/O thread.
#[derive(Debug)]
pub struct Prepared {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

#[derive(Debug)]
enum Body {
    None,
    Whole(Bytes),
    /// Bytes `start..end` of the file, read as the client takes them.
    Pieces {
        file: Arc<File>,
        start: u64,
        end: u64,
    },
}

/// Decides the answer for `found` under `conditions`; reads a small body.
pub fn prepare(found: Found, conditions: &Conditions) -> io::Result<Prepared> {
    let size = found.version.size;
    let etag = found.version.etag(found.coding);
    let last_modified = found.version.last_modified();
    let mut headers = HeaderMap::new();
    put(&mut headers, ETAG, &etag);
    put(&mut headers, LAST_MODIFIED, &last_modified);
    if found.varies {
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    // RFC 9110 13.2.2: If-None-Match, else If-Modified-Since.
    let not_modified = match (&conditions.if_none_match, &conditions.if_modified_since) {
        (Some(tags), _) => validators::none_match_hits(tags, &etag),
        (None, Some(since)) => validators::not_modified_since(since, found.version.modified),
        (None, None) => false,
    };
    if not_modified {
        return Ok(Prepared {
            status: StatusCode::NOT_MODIFIED,
            headers,
            body: Body::None,
        });
    }
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let range = match (&conditions.range, &conditions.if_range) {
        (Some(range), None) => validators::parse_range(range, size),
        (Some(range), Some(if_range))
            if validators::if_range_holds(if_range, &etag, &last_modified) =>
        {
            validators::parse_range(range, size)
        }
        _ => RangeRequest::Whole,
    };
    let (status, start, end) = match range {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Part { start, end } => {
            put(
                &mut headers,
                CONTENT_RANGE,
                &format!("bytes {start}-{}/{size}", end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        RangeRequest::Unsatisfiable => {
            put(&mut headers, CONTENT_RANGE, &format!("bytes */{size}"));
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            let text = "416 Range Not Satisfiable\n";
            return Ok(Prepared {
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                headers,
                body: Body::Whole(Bytes::from_static(text.as_bytes())),
            });
        }
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(found.content_type));
    if let Some(coding) = found.coding {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    let length = end - start;
    put(
        &mut headers,
        CONTENT_LENGTH,
        itoa::Buffer::new().format(length),
    );
    let body = if conditions.head || length == 0 {
        Body::None
    } else if length <= READ_AT_ONCE {
        Body::Whole(read(&found.file, start, length)?)
    } else {
        Body::Pieces {
            file: Arc::new(found.file),
            start,
            end,
        }
    };
    Ok(Prepared {
        status,
        headers,
        body,
    })
}

impl Prepared {
    /// The response; a large body starts being pumped on the calling
    /// thread's runtime.
    pub fn into_response(self) -> Response<ReplyBody> {
        let body = match self.body {
            Body::None => ReplyBody::Full(Bytes::new()),
            Body::Whole(bytes) => ReplyBody::Full(bytes),
            Body::Pieces { file, start, end } => {
                let (sender, receiver) = crate::body_channel::channel(BUFFERED);
                tokio::spawn(async move {
                    let mut offset = start;
                    while offset < end {
                        let length = PIECE.min(end - offset);
                        let file = Arc::clone(&file);
                        let piece =
                            tokio::task::spawn_blocking(move || read(&file, offset, length)).await;
                        let Ok(Ok(piece)) = piece else {
                            // The file shrank or the runtime is stopping:
                            // cut the connection rather than end short.
                            sender.abort();
                            return;
                        };
                        if sender.send(piece).await.is_err() {
                            return; // The client went away.
                        }
                        offset += length;
                    }
                    sender.finish();
                });
                ReplyBody::Channel(receiver)
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

/// Reads exactly `length` bytes at `offset` (a file that shrank meanwhile
/// is an error: its length is already promised).
fn read(file: &File, offset: u64, length: u64) -> io::Result<Bytes> {
    let length =
        usize::try_from(length).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buffer = vec![0; length];
    file.read_exact_at(&mut buffer, offset)?;
    Ok(Bytes::from(buffer))
}

/// Inserts a field whose value the server made (always valid).
fn put(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}
