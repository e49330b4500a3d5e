//! The Invoke API, as AWS's Lambda API and its runtime interface emulator
//! answer it, so `aws lambda invoke --endpoint-url` and `cargo lambda
//! invoke` work. It is served only on its own listener
//! (`INVOKE_API_ADDRESS`, see `crate::invoke_api`), never on the public
//! port: it reaches every function, whatever route guards it.
//!
//! `POST /2015-03-31/functions/{name}/invocations`, body = the event
//! (at most `MAX_BODY_BYTES` and AWS's 6 MiB).
//! * `X-Amz-Invocation-Type: RequestResponse` (default): 200 with the
//!   function's result as it returned it; a failure is 200 with
//!   `X-Amz-Function-Error: Unhandled` and the error JSON; throttled: 429.
//! * `Event`: 202 once the event has room in the [`EventQueue`] (at most
//!   1 MiB, AWS's asynchronous limit); it runs in the background. A full
//!   queue: 429, so an accepted event always runs.
//! * `DryRun`: 204.
//! * Unknown function: 404 `ResourceNotFoundException`; any other path or
//!   method: 404 `UnknownOperationException`.

use std::sync::Arc;
use std::time::Instant;

use crate::http1::RequestBody;
use base64::Engine as _;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::event_queue::EventQueue;
use super::pool::Waiting;
use super::{ids, Outcome, MAX_PAYLOAD};
use crate::access_log::TargetNote;
use crate::body_channel;
use crate::respond::ReplyBody;
use crate::route::RouteTable;
use crate::targets::{whole_body, Served, TargetEnv};

const PREFIX: &str = "/2015-03-31/functions/";
const SUFFIX: &str = "/invocations";

/// Largest asynchronous (`Event`) payload, AWS's limit.
pub const MAX_EVENT_PAYLOAD: usize = 1024 * 1024;

/// True for a request the Invoke API answers.
fn is_invoke(request: &Request<RequestBody>) -> bool {
    let path = request.uri().path();
    request.method() == Method::POST && path.starts_with(PREFIX) && path.ends_with(SUFFIX)
}

/// The function name in an invoke path: a name, `name:qualifier`, or an ARN.
fn function_name(path: &str) -> Option<String> {
    let raw = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let decoded = raw
        .replace("%3A", ":")
        .replace("%3a", ":")
        .replace("%24", "$");
    let name = match decoded.strip_prefix("arn:") {
        Some(arn) => arn.split(':').nth(5)?.to_string(),
        None => decoded.split(':').next()?.to_string(),
    };
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Answers one Invoke API request against the functions of `routes`;
/// asynchronous invocations are held in `events`.
pub async fn invoke(
    env: &TargetEnv,
    routes: &RouteTable,
    events: &Arc<EventQueue>,
    request: Request<RequestBody>,
) -> Served {
    if !is_invoke(&request) {
        return Served::plain(api_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Unknown operation: this endpoint serves POST /2015-03-31/functions/{name}/invocations",
        ));
    }
    let name = function_name(request.uri().path()).unwrap_or_default();
    let function = routes.targets().find_map(|target| {
        target
            .functions()
            .into_iter()
            .find(|function| function.spec().name == name)
    });
    let Some(function) = function else {
        let arn = format!(
            "arn:aws:lambda:us-east-1:{}:function:{name}",
            super::event::ACCOUNT_ID
        );
        return Served::plain(api_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {arn}"),
        ));
    };
    let (parts, body) = request.into_parts();
    let invocation_type = parts
        .headers
        .get("x-amz-invocation-type")
        .map(|value| value.as_bytes().to_vec())
        .unwrap_or_else(|| b"RequestResponse".to_vec());
    let client_context = parts
        .headers
        .get("x-amz-client-context")
        .and_then(|value| {
            base64::engine::general_purpose::STANDARD
                .decode(value.as_bytes())
                .ok()
        })
        .and_then(|decoded| HeaderValue::from_bytes(&decoded).ok());
    // `MAX_BODY_BYTES` holds here too; AWS's 6 MiB limit is answered in
    // AWS's words below.
    let limit = env.max_body_bytes.min(MAX_PAYLOAD as u64 + 1);
    let event = match whole_body::read_whole(body, limit, env.body_timeout).await {
        Ok(event) => event,
        Err(reply) => return Served::plain(reply.into_response()),
    };
    if event.len() > MAX_PAYLOAD {
        return Served::plain(api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!(
                "Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"
            ),
        ));
    }
    let event = if event.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        event
    };
    let request_id = ids::request_id();
    let started = Instant::now();
    let note = |started: Instant| TargetNote {
        kind: "lambda",
        who: function.spec().name.clone(),
        time: started.elapsed(),
    };
    let response = match invocation_type.as_slice() {
        b"DryRun" => empty(StatusCode::NO_CONTENT, &request_id),
        b"Event" if event.len() > MAX_EVENT_PAYLOAD => api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!(
                "Request must be smaller than {MAX_EVENT_PAYLOAD} bytes for the InvokeAsync operation"
            ),
        ),
        b"Event" => match events.reserve(event.len()) {
            None => api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded. (the queue of asynchronous invocations is full: EVENT_QUEUE_MAX, EVENT_QUEUE_MAX_BYTES)",
            ),
            Some(ticket) => {
                let pool = Arc::clone(&function.pool);
                let id = request_id.clone();
                // Tied to no connection: on the control runtime.
                drop(crate::control::handle().spawn(async move {
                    // The result of an asynchronous invocation goes nowhere;
                    // the function's logs tell what happened.
                    let _ = pool
                        .invoke_as(id, event, client_context, Waiting::Background)
                        .await;
                    drop(ticket);
                }));
                empty(StatusCode::ACCEPTED, &request_id)
            }
        },
        b"RequestResponse" => {
            let outcome = function
                .pool
                .invoke_as(request_id.clone(), event, client_context, Waiting::Queue)
                .await;
            raw_response(outcome, &request_id)
        }
        _ => api_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun",
        ),
    };
    Served {
        response,
        usage: crate::arena::ArenaUsage::default(),
        note: Some(note(started)),
        fields: None,
    }
}

/// A synchronous invocation's answer: the result as the function returned it.
fn raw_response(outcome: Outcome, request_id: &str) -> Response<ReplyBody> {
    let mut function_error = false;
    let (status, body) = match outcome {
        Outcome::Response(result) => (StatusCode::OK, ReplyBody::Full(result)),
        Outcome::Streaming { prelude, body, .. } => {
            // A plain invoke of a streaming function gets its bytes as they
            // were sent, prelude included.
            let body = match prelude {
                None => body,
                Some(prelude) => prefixed(prelude, body),
            };
            (StatusCode::OK, ReplyBody::Channel(body))
        }
        Outcome::Failed(failure) => {
            function_error = true;
            (StatusCode::OK, ReplyBody::Full(failure.body))
        }
        Outcome::Throttled => {
            return api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.",
            );
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        HeaderName::from_static("x-amz-executed-version"),
        HeaderValue::from_static("$LATEST"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), id);
    }
    if function_error {
        headers.insert(
            HeaderName::from_static("x-amz-function-error"),
            HeaderValue::from_static("Unhandled"),
        );
    }
    response
}

/// `prelude`, eight NULs, then `rest`, as one streamed body.
fn prefixed(prelude: Bytes, mut rest: body_channel::BodyReceiver) -> body_channel::BodyReceiver {
    use http_body_util::BodyExt as _;
    let (sender, receiver) = body_channel::channel(64 * 1024);
    tokio::spawn(async move {
        let mut head = prelude.to_vec();
        head.extend_from_slice(&[0; 8]);
        if sender.send(Bytes::from(head)).await.is_err() {
            return;
        }
        while let Some(frame) = rest.frame().await {
            match frame.map(hyper::body::Frame::into_data) {
                Ok(Ok(data)) => {
                    if sender.send(data).await.is_err() {
                        return;
                    }
                }
                Ok(Err(_)) => {}
                Err(_) => {
                    sender.abort();
                    return;
                }
            }
        }
        sender.finish();
    });
    receiver
}

fn empty(status: StatusCode, request_id: &str) -> Response<ReplyBody> {
    let mut response = Response::new(ReplyBody::Full(Bytes::new()));
    *response.status_mut() = status;
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-amzn-requestid"), id);
    }
    response
}

/// An error of the Lambda API: `{"Type": "User", "message": …}` with
/// `X-Amzn-ErrorType`, as AWS sends it (SDKs read the header), plus
/// `errorType` and `errorMessage`, which `cargo lambda invoke` reads.
fn api_error(status: StatusCode, kind: &'static str, message: &str) -> Response<ReplyBody> {
    let body = json!({
        "Type": "User",
        "message": message,
        "errorType": kind,
        "errorMessage": message,
    })
    .to_string();
    let mut response = Response::new(ReplyBody::Full(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        HeaderName::from_static("x-amzn-errortype"),
        HeaderValue::from_static(kind),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn names() {
        let name = |path: &str| function_name(path);
        assert_eq!(
            name("/2015-03-31/functions/hello/invocations").as_deref(),
            Some("hello")
        );
        assert_eq!(
            name("/2015-03-31/functions/hello:%24LATEST/invocations").as_deref(),
            Some("hello")
        );
        assert_eq!(
            name("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ahello/invocations").as_deref(),
            Some("hello")
        );
        assert_eq!(name("/2015-03-31/functions//invocations"), None);
        assert_eq!(name("/2015-03-31/functions/a/b/invocations"), None);
    }
}
