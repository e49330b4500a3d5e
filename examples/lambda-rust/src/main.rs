//! A Lambda function written with AWS's `lambda_http` crate, used as it
//! would be deployed behind a Function URL. The last path segment picks
//! what it does, so it works under any route prefix:
//!
//! * `echo` — the request as the function saw it, as JSON (method, path,
//!   query, headers, cookie header, body in base64, request id, deadline)
//! * `bin` — the request body back, as `application/octet-stream`
//! * `cookies` — three `Set-Cookie` headers
//! * `slow?ms=N` — answers after N milliseconds
//! * `error` — a handler error
//! * `crash` — the process exits in the middle of the invocation
//! * `pid` — the process id (tells instances apart)
//! * anything else — `hello from lambda_http`
//!
//! With `FLEXI_STREAMING=1` the function streams its responses
//! (`run_with_streaming_response`): `stream?ms=N` sends `first\n`, waits N
//! milliseconds, then sends `last\n`.

use base64::Engine as _;
use http_body_util::channel::Channel;
use bytes::Bytes;
use lambda_http::{service_fn, Body, Error, Request, RequestExt as _, Response};
use std::time::Duration;

/// What a buffered response looks like.
async fn handle(request: Request) -> Result<Response<Body>, Error> {
    let path = request.uri().path().to_string();
    let action = path.rsplit('/').next().unwrap_or_default();
    let context = request.lambda_context();
    let response = match action {
        "echo" => {
            let headers: serde_json::Map<String, serde_json::Value> = request
                .headers()
                .keys()
                .map(|name| {
                    let joined = request
                        .headers()
                        .get_all(name)
                        .iter()
                        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                        .collect::<Vec<_>>()
                        .join(",");
                    (name.as_str().to_string(), joined.into())
                })
                .collect();
            let echo = serde_json::json!({
                "method": request.method().as_str(),
                "path": path,
                "query": request.uri().query().unwrap_or_default(),
                "headers": headers,
                "body_base64": base64::engine::general_purpose::STANDARD.encode(request.body().as_ref()),
                "request_id": context.request_id,
                "deadline_ms": context.deadline,
                "function_name": context.env_config.function_name,
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(echo.to_string()))?
        }
        "bin" => Response::builder()
            .header("content-type", "application/octet-stream")
            .body(Body::from(request.body().as_ref().to_vec()))?,
        "cookies" => Response::builder()
            .header("content-type", "text/plain")
            .header("set-cookie", "a=1; Path=/")
            .header("set-cookie", "b=2; HttpOnly")
            .header("set-cookie", "c=3")
            .body(Body::from("three cookies"))?,
        "slow" => {
            tokio::time::sleep(Duration::from_millis(query_ms(&request))).await;
            Response::builder()
                .header("content-type", "text/plain")
                .body(Body::from(format!("slept in {}", std::process::id())))?
        }
        "error" => return Err("the handler failed on purpose".into()),
        "crash" => std::process::exit(3),
        "pid" => Response::builder()
            .header("content-type", "text/plain")
            .body(Body::from(std::process::id().to_string()))?,
        _ => Response::builder()
            .header("content-type", "text/plain")
            .body(Body::from("hello from lambda_http"))?,
    };
    Ok(response)
}

/// A streamed response: `first`, a pause, `last`.
async fn handle_streaming(request: Request) -> Result<Response<Channel<Bytes>>, Error> {
    let pause = Duration::from_millis(query_ms(&request));
    let (mut sender, body) = Channel::new(4);
    tokio::spawn(async move {
        let _ = sender.send_data(Bytes::from_static(b"first\n")).await;
        tokio::time::sleep(pause).await;
        let _ = sender.send_data(Bytes::from_static(b"last\n")).await;
    });
    Ok(Response::builder()
        .status(201)
        .header("content-type", "text/plain")
        .header("set-cookie", "streamed=yes")
        .body(body)?)
}

/// The `ms` query parameter (default 0).
fn query_ms(request: &Request) -> u64 {
    request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0)
}

// One thread: a Lambda instance runs one invocation at a time, and a
// multi-threaded runtime would hand every event between two threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    if std::env::var("FLEXI_STREAMING").is_ok_and(|v| v == "1") {
        lambda_http::run_with_streaming_response(service_fn(handle_streaming)).await
    } else {
        lambda_http::run(service_fn(handle)).await
    }
}
