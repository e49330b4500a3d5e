//! The Lambda Runtime API an instance's runtime client talks to, served on
//! the instance's own loopback port (`AWS_LAMBDA_RUNTIME_API`). A
//! connection is served only if one of the instance's processes made it
//! (checked through `/proc` when it is accepted); any other gets 403 and is
//! closed, so every call is known to come from that instance:
//!
//! | call | answer |
//! |---|---|
//! | `GET /2018-06-01/runtime/invocation/next` | long poll; 200, the event, `Lambda-Runtime-*` headers |
//! | `POST …/invocation/{id}/response` | 202; 400 unknown id; 413 over 6 MiB; streamed with `Lambda-Runtime-Function-Response-Mode: streaming` |
//! | `POST …/invocation/{id}/error` | 202; 400 unknown id |
//! | `POST /2018-06-01/runtime/init/error` | 202; the instance is stopped |
//!
//! A call that does not fit the instance's state (`/next` during an
//! invocation, a second result, `/init/error` after the first `/next`) gets
//! 403 `InvalidStateTransition`.
//! Connections are served by [`crate::conn::serve`], like the public ones,
//! on the instance's home runtime ([`crate::control::home`]): the core
//! thread that started it, whose invocations it usually serves.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::http1::RequestBody;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::instance::{FunctionInstance, StateError};
use super::{logs, Failure, Outcome, MAX_PAYLOAD};
use crate::body_channel;
use crate::conn::{self, Activity, ConnSettings};
use crate::http1::head::HeadLimits;
use crate::process_tree;

const PREFIX: &str = "/2018-06-01/runtime/";
/// Content type of a streamed HTTP integration response (prelude, 8 NULs, body).
const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
/// Bytes of a streamed body buffered towards a slow client before the
/// function's upload is made to wait.
const STREAM_BUFFER: usize = 64 * 1024;
/// Connections one instance's Runtime API serves at once (a runtime client
/// uses one or two).
const MAX_CONNECTIONS: usize = 16;
/// Largest streaming prelude.
const MAX_PRELUDE: usize = 64 * 1024;

/// A listener for an instance's Runtime API, on an ephemeral loopback port
/// (registered with a runtime by [`serve`], on the runtime it runs on).
pub fn bind() -> std::io::Result<(std::net::TcpListener, std::net::SocketAddr)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

/// Accepts the instance's Runtime API connections until aborted.
pub async fn serve(
    listener: std::net::TcpListener,
    instance: Arc<FunctionInstance>,
    shutdown: watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "cannot serve a Runtime API; instance stopped");
            instance.kill();
            return;
        }
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // At the cap, new connections wait in the listen queue.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "runtime API accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let instance = Arc::clone(&instance);
        let shutdown = shutdown.clone();
        // Checked on the connection's own task: a flood of strangers does
        // not hold up the instance's own connection.
        tokio::spawn(async move {
            let _permit = permit;
            let owner = Arc::clone(&instance);
            let local = instance.api;
            let checked =
                tokio::task::spawn_blocking(move || from_instance(&owner, peer, local)).await;
            if !checked.unwrap_or(false) {
                refuse(stream, &instance).await;
                return;
            }
            conn::serve(
                stream,
                peer,
                move |activity| {
                    move |request| {
                        let instance = Arc::clone(&instance);
                        let activity = Arc::clone(&activity);
                        async move {
                            let _busy = Busy::new(activity);
                            handle(&instance, request).await
                        }
                    }
                },
                settings(),
                shutdown,
                None,
            )
            .await;
        });
    }
}

/// True if the connection from `peer` to the instance's Runtime API at
/// `local` was made by one of the instance's processes: its leader, a
/// descendant, or a process carrying its mark that the server inherited as
/// a child subreaper. Found through `/proc`: the connecting socket's inode
/// in `/proc/net/tcp`, then the processes holding it. Anything else (another
/// local process or user, a worker's `fetch`, the server itself) is refused.
fn from_instance(
    instance: &FunctionInstance,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
) -> bool {
    let Some(inode) = process_tree::connecting_socket_inode(peer, local) else {
        return false;
    };
    if process_tree::holds_socket(instance.pid, inode) {
        return true;
    }
    let table = process_tree::snapshot();
    let me = std::process::id();
    let mut candidates = process_tree::descendants(&table, instance.pid);
    for (pid, process) in &table {
        if process.ppid == me
            && process_tree::instance_mark(*pid).as_deref() == Some(instance.mark.as_str())
        {
            candidates.push(*pid);
            candidates.extend(process_tree::descendants(&table, *pid));
        }
    }
    candidates
        .into_iter()
        .any(|pid| process_tree::holds_socket(pid, inode))
}

/// Answers a connection from outside the instance 403 and closes it.
async fn refuse(mut stream: tokio::net::TcpStream, instance: &FunctionInstance) {
    use tokio::io::AsyncWriteExt as _;
    let name = &instance.function().spec.name;
    tracing::warn!(function = %name, "Runtime API connection from a process outside the instance refused");
    let body = r#"{"errorMessage":"this Runtime API belongs to another process","errorType":"AccessDenied"}"#;
    let answer = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
}

/// Marks the connection busy while a call (a long poll) is in progress, so
/// the idle timeouts leave it alone.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.begin_request();
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

fn settings() -> Arc<ConnSettings> {
    static SETTINGS: OnceLock<Arc<ConnSettings>> = OnceLock::new();
    Arc::clone(SETTINGS.get_or_init(|| {
        Arc::new(ConnSettings {
            limits: HeadLimits {
                max_bytes: 64 * 1024,
                max_fields: 100,
            },
            keepalive_timeout: Duration::from_secs(600),
            header_read_timeout: Duration::from_secs(10),
            stats: Arc::default(),
            limit: None,
            log: None,
            h2c: false,
        })
    }))
}

type Answer = Response<Full<Bytes>>;

async fn handle(instance: &Arc<FunctionInstance>, request: Request<RequestBody>) -> Answer {
    let path = request.uri().path().to_string();
    let Some(call) = path.strip_prefix(PREFIX) else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "unknown Runtime API path",
        );
    };
    let method = request.method().clone();
    match (call.split('/').collect::<Vec<_>>().as_slice(), method) {
        (["invocation", "next"], Method::GET) => next(instance).await,
        (["invocation", id, "response"], Method::POST) => {
            let id = (*id).to_string();
            response(instance, &id, request).await
        }
        (["invocation", id, "error"], Method::POST) => {
            let id = (*id).to_string();
            function_error(instance, &id, request).await
        }
        (["init", "error"], Method::POST) => {
            let body = read_limited(request.into_body())
                .await
                .unwrap_or_else(|_| Bytes::from_static(b"{}"));
            let text = String::from_utf8_lossy(&body).into_owned();
            match instance.init_failed(body) {
                Ok(()) => {
                    logs::line(
                        &instance.function().spec.name,
                        &format!("init error: {text}"),
                    );
                    accepted()
                }
                Err(problem) => state_error(&problem),
            }
        }
        (
            ["invocation", "next"] | ["invocation", _, "response" | "error"] | ["init", "error"],
            _,
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "unknown Runtime API path",
        ),
    }
}

async fn next(instance: &Arc<FunctionInstance>) -> Answer {
    let handout = match instance.next().await {
        Ok(handout) => handout,
        Err(problem) => return state_error(&problem),
    };
    let function = instance.function();
    let mut response = Response::new(Full::new(handout.event));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("lambda-runtime-aws-request-id", &handout.request_id);
    set(
        "lambda-runtime-deadline-ms",
        itoa::Buffer::new().format(handout.deadline_ms),
    );
    set("lambda-runtime-invoked-function-arn", &function.arn);
    set("lambda-runtime-trace-id", &handout.trace_id);
    if let Some(context) = handout.client_context {
        headers.insert(
            HeaderName::from_static("lambda-runtime-client-context"),
            context,
        );
    }
    response
}

async fn response(
    instance: &Arc<FunctionInstance>,
    id: &str,
    request: Request<RequestBody>,
) -> Answer {
    if let Err(problem) = instance.begin_result(id) {
        return state_error(&problem);
    }
    let streaming = request
        .headers()
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if streaming {
        return stream(instance, id, request).await;
    }
    match read_limited(request.into_body()).await {
        Ok(body) => {
            instance.finish(id, Some(Outcome::Response(body)));
            accepted()
        }
        Err(ReadError::TooLarge) => {
            instance.finish(id, Some(Outcome::Failed(Failure::too_large())));
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."),
            )
        }
        Err(ReadError::Broken) => {
            instance.abandon_result(id);
            error(StatusCode::BAD_REQUEST, "InvalidRequest", "unreadable body")
        }
    }
}

/// A streamed response: the body is passed on to the client as it comes,
/// with the function's upload held back while the client is behind.
async fn stream(
    instance: &Arc<FunctionInstance>,
    id: &str,
    request: Request<RequestBody>,
) -> Answer {
    let content_type = request.headers().get(CONTENT_TYPE).cloned();
    let integration = content_type
        .as_ref()
        .is_some_and(|value| value.as_bytes().starts_with(HTTP_INTEGRATION.as_bytes()));
    let mut body = request.into_body();
    let (sender, receiver) = body_channel::channel(STREAM_BUFFER);
    // Until the head is known (for an HTTP integration, the prelude up to
    // eight NULs comes first) the waiting request has not got the body.
    let mut receiver = Some(receiver);
    let mut pending = BytesMut::new();
    if !integration {
        if let Some(receiver) = receiver.take() {
            instance.stream_started(
                id,
                Outcome::Streaming {
                    prelude: None,
                    content_type: content_type.clone(),
                    body: receiver,
                },
            );
        }
    }
    let mut failed = false;
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => {
                tracing::debug!(%error, "streamed response broken off");
                failed = true;
                break;
            }
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                let kind = frame
                    .trailers_ref()
                    .and_then(|trailers| trailers.get("lambda-runtime-function-error-type"));
                if let Some(kind) = kind {
                    logs::line(
                        &instance.function().spec.name,
                        &format!(
                            "streamed response failed: {}",
                            String::from_utf8_lossy(kind.as_bytes())
                        ),
                    );
                    failed = true;
                }
                continue;
            }
        };
        let data = match receiver.take() {
            None => data,
            Some(waiting) => {
                pending.extend_from_slice(&data);
                let Some(at) = find_delimiter(&pending) else {
                    receiver = Some(waiting);
                    if pending.len() > MAX_PRELUDE {
                        failed = true;
                        break;
                    }
                    continue;
                };
                let rest = pending.split_off(at + 8).freeze();
                pending.truncate(at);
                instance.stream_started(
                    id,
                    Outcome::Streaming {
                        prelude: Some(std::mem::take(&mut pending).freeze()),
                        content_type: content_type.clone(),
                        body: waiting,
                    },
                );
                rest
            }
        };
        if !data.is_empty() {
            // A client that went away no longer takes chunks; the function's
            // upload is still read to its end.
            let _ = sender.send(data).await;
        }
    }
    if let Some(receiver) = receiver.take() {
        // The body ended inside the prelude: all of it is the prelude.
        instance.stream_started(
            id,
            Outcome::Streaming {
                prelude: Some(pending.freeze()),
                content_type,
                body: receiver,
            },
        );
    }
    if failed {
        sender.abort();
    } else {
        sender.finish();
    }
    instance.finish(id, None);
    accepted()
}

/// Position of the eight NUL bytes that end a prelude.
fn find_delimiter(buffer: &[u8]) -> Option<usize> {
    buffer.windows(8).position(|window| window == [0u8; 8])
}

async fn function_error(
    instance: &Arc<FunctionInstance>,
    id: &str,
    request: Request<RequestBody>,
) -> Answer {
    if let Err(problem) = instance.begin_result(id) {
        return state_error(&problem);
    }
    let header_type = request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = match read_limited(request.into_body()).await {
        Ok(body) => body,
        Err(ReadError::TooLarge) => Bytes::new(),
        Err(ReadError::Broken) => {
            instance.abandon_result(id);
            return error(StatusCode::BAD_REQUEST, "InvalidRequest", "unreadable body");
        }
    };
    let failure = Failure::handler(body, header_type.as_deref());
    instance.finish(id, Some(Outcome::Failed(failure)));
    accepted()
}

enum ReadError {
    TooLarge,
    Broken,
}

async fn read_limited(body: RequestBody) -> Result<Bytes, ReadError> {
    match Limited::new(body, MAX_PAYLOAD).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(ReadError::TooLarge),
        Err(_) => Err(ReadError::Broken),
    }
}

fn accepted() -> Answer {
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn state_error(problem: &StateError) -> Answer {
    match problem {
        StateError::UnknownRequest => error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "Invalid request ID",
        ),
        StateError::AlreadyResponding | StateError::Busy | StateError::Initialized => error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            &format!("State transition is not allowed: {problem}"),
        ),
        StateError::Dead => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Runtime.Stopping",
            "the instance is stopping",
        ),
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Answer {
    let body = json!({"errorMessage": message, "errorType": kind}).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::find_delimiter;

    #[test]
    fn prelude_delimiter() {
        assert_eq!(find_delimiter(b"{}\0\0\0\0\0\0\0\0body"), Some(2));
        assert_eq!(find_delimiter(b"{}\0\0\0\0\0\0\0"), None);
    }
}
