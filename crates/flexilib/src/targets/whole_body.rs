//! Reading a whole request body, for targets that need it before they start
//! (libraries): the size limit (413) and the time limit (408).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;

use crate::http1::RequestBody;
use hyper::StatusCode;

use crate::respond::Reply;

/// Reads the whole body, enforcing the size limit and the time limit; the
/// error is the reply to send instead.
pub async fn read_whole(body: RequestBody, limit: u64, timeout: Duration) -> Result<Bytes, Reply> {
    let too_large =
        || Reply::text(StatusCode::PAYLOAD_TOO_LARGE, "413 Payload Too Large\n").closing();
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    // Most bodies came with their head (or there is none): no timer needed.
    let body = match body.into_whole() {
        Ok(whole) => return Ok(whole),
        Err(body) => body,
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let Ok(collected) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await
    else {
        return Err(Reply::text(
            StatusCode::REQUEST_TIMEOUT,
            "408 Request Timeout: the body did not arrive in time\n",
        )
        .closing());
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => {
            tracing::debug!(%error, "request body unreadable");
            Err(Reply::text(
                StatusCode::BAD_REQUEST,
                "400 Bad Request: unreadable body\n",
            )
            .closing())
        }
    }
}
