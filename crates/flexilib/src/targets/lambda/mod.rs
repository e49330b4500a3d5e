//! Lambda targets: unmodified AWS Lambda functions (a `bootstrap` built
//! with AWS's Rust runtime, a handler run by `awslambdaric` or
//! `aws-lambda-ric`) behind a route, answering as a Function URL does.
//!
//! * [`event`] — HTTP request → payload 2.0 event, result → HTTP response.
//! * [`pool`] — the function's instances: cold starts, reuse, the
//!   concurrency limit, the queue and throttling, idle reaping, hot reload
//!   by generation.
//! * [`instance`] — one process and the state of its one invocation:
//!   deadline, crash, init error; no orphans.
//! * [`reaper`] — live instances' marks and leaders; ending what an
//!   instance leaves behind.
//! * [`runtime_api`] — the Runtime API each instance talks to, on its own
//!   loopback port.
//! * [`invoke`] — the Invoke API (`POST /2015-03-31/functions/{name}/invocations`),
//!   served on its own listener (`crate::invoke_api`).
//! * [`event_queue`] — the bound on asynchronous (`Event`) invocations.
//! * [`logs`] — instance output and the `START`/`END`/`REPORT` lines.
//! * [`ids`] — request ids, trace ids, dates.
//! * [`dependencies`] — `requirements.txt` / `package.json` installed into
//!   a cache, as `sam build` installs them.
//! * [`runtime_clients`] — the Python and Node runtime clients FlexiLib
//!   ships, written where instances can run them.
//!
//! A request to a function never holds a handler slot: it waits
//! asynchronously for a process, as an upstream request does.

pub mod dependencies;
pub mod event;
pub mod event_queue;
pub mod ids;
pub mod instance;
pub mod invoke;
pub mod logs;
pub mod pool;
pub mod reaper;
pub mod runtime_api;
pub mod runtime_clients;

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::http1::RequestBody;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::access_log::TargetNote;
use crate::body_channel::BodyReceiver;
use crate::config::LambdaSpec;
use crate::file_version::FileVersion;
use crate::respond::ReplyBody;
use crate::targets::{whole_body, CallInfo, Served, TargetEnv};
pub use invoke::invoke;
use pool::PoolShared;

/// Largest event or result (AWS's synchronous payload limit, 6 MiB).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// Kills every instance of every function (worker shutdown).
pub fn stop_all() {
    instance::kill_all();
    runtime_clients::remove();
}

/// What every instance of a function shares.
pub struct Function {
    /// The config's description.
    pub spec: LambdaSpec,
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    pub arn: String,
    region: String,
}

impl Function {
    fn new(spec: LambdaSpec) -> Self {
        let region = std::env::var("AWS_REGION")
            .ok()
            .filter(|region| !region.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        let arn = format!(
            "arn:aws:lambda:{region}:{}:function:{}",
            event::ACCOUNT_ID,
            spec.name
        );
        Self { spec, arn, region }
    }

    /// The environment of an instance whose Runtime API is at `api`
    /// (added to the server's own environment).
    pub fn environment(&self, api: SocketAddr) -> Vec<(String, String)> {
        let spec = &self.spec;
        let now = SystemTime::now();
        let task_root = spec.dir.to_string_lossy().into_owned();
        let mut env: Vec<(String, String)> = [
            ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            ),
            (
                "AWS_LAMBDA_FUNCTION_TIMEOUT",
                spec.timeout.as_secs().max(1).to_string(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.name),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("{}/[$LATEST]{}", ids::log_stream_date(now), ids::hex_id()),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_DEFAULT_REGION", self.region.clone()),
            (
                "AWS_EXECUTION_ENV",
                format!(
                    "AWS_Lambda_{}",
                    spec.runtime.as_deref().unwrap_or("flexilib")
                ),
            ),
            ("LAMBDA_TASK_ROOT", task_root.clone()),
            ("LAMBDA_RUNTIME_DIR", task_root),
            ("TZ", ":UTC".into()),
            // Python validates cached bytecode by mtime in whole seconds and
            // size: a file saved twice within a second, same size, would run
            // stale. Without a cache, a changed file is always read.
            ("PYTHONDONTWRITEBYTECODE", "1".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        if let Some(handler) = &spec.handler {
            env.push(("_HANDLER".into(), handler.clone()));
        }
        env.extend(spec.env.iter().cloned());
        env
    }
}

/// How an invocation ended.
pub enum Outcome {
    /// The whole result.
    Response(Bytes),
    /// A streamed result: its body arrives through `body`.
    Streaming {
        /// For an HTTP integration response: the JSON prelude (status,
        /// headers, cookies) that came before the eight NUL bytes.
        prelude: Option<Bytes>,
        /// The content type the function streamed with.
        content_type: Option<HeaderValue>,
        /// The rest of the body, as the function sends it.
        body: BodyReceiver,
    },
    /// The function failed.
    Failed(Failure),
    /// Every instance is busy and the queue is full.
    Throttled,
}

/// A failed invocation: what a raw invoke returns (with
/// `X-Amz-Function-Error: Unhandled`); a Function URL answers 502.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `errorType`.
    pub error_type: String,
    /// The error JSON.
    pub body: Bytes,
}

impl Failure {
    fn new(error_type: &str, message: &str) -> Self {
        Self {
            error_type: error_type.into(),
            body: Bytes::from(
                json!({"errorType": error_type, "errorMessage": message}).to_string(),
            ),
        }
    }

    /// The handler reported an error (`/error`).
    pub fn handler(body: Bytes, header_type: Option<&str>) -> Self {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(error)) => Self {
                error_type: error
                    .get("errorType")
                    .and_then(serde_json::Value::as_str)
                    .or(header_type)
                    .unwrap_or("Unhandled")
                    .into(),
                body,
            },
            _ => Self::new(
                header_type.unwrap_or("Unhandled"),
                &String::from_utf8_lossy(&body),
            ),
        }
    }

    /// The runtime failed to start (`/init/error`).
    pub fn init(body: Bytes) -> Self {
        Self::handler(body, Some("Runtime.Unknown"))
    }

    /// The deadline passed; `message` is the `Task timed out…` line.
    pub fn timeout(message: &str) -> Self {
        Self::new("Sandbox.Timedout", message)
    }

    /// The process exited during the invocation.
    pub fn exited(request_id: &str, status: &str) -> Self {
        Self::new(
            "Runtime.ExitError",
            &format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
        )
    }

    /// The process could not be started.
    pub fn spawn(request_id: &str, error: &std::io::Error) -> Self {
        Self::new(
            "Runtime.InvalidEntrypoint",
            &format!("RequestId: {request_id} Error: cannot start the runtime: {error}"),
        )
    }

    /// The result is larger than [`MAX_PAYLOAD`].
    pub fn too_large() -> Self {
        Self::new(
            "Function.ResponseSizeTooLarge",
            &format!("Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."),
        )
    }

    /// The log line for an exit during an invocation.
    pub fn log_line(&self, request_id: &str) -> String {
        let message = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|error| {
                error
                    .get("errorMessage")
                    .and_then(|m| m.as_str().map(String::from))
            })
            .unwrap_or_else(|| format!("RequestId: {request_id}"));
        format!("{message} {}", self.error_type)
    }
}

/// A live Lambda target: the function and its pool of instances.
pub struct LambdaFunction {
    pool: Arc<PoolShared>,
    /// The executable's version when the current generation began.
    seen_version: Mutex<Option<FileVersion>>,
}

impl std::fmt::Debug for LambdaFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaFunction")
            .field("name", &self.spec().name)
            .finish_non_exhaustive()
    }
}

impl LambdaFunction {
    /// A function with no instance yet.
    pub fn new(spec: &LambdaSpec) -> Self {
        let seen = if spec.is_interpreted() {
            None
        } else {
            FileVersion::of(&spec.program).ok()
        };
        Self {
            pool: PoolShared::new(Function::new(spec.clone())),
            seen_version: Mutex::new(seen),
        }
    }

    /// Runs one invocation of `event`, waiting in the function's queue
    /// when every instance is busy.
    pub async fn invoke(&self, event: Bytes) -> Outcome {
        self.pool.invoke(event, None, pool::Waiting::Queue).await
    }

    /// Its instances by state and its queue now (for `/metrics`).
    pub fn census(&self) -> pool::Census {
        self.pool.census()
    }

    /// Its config.
    pub fn spec(&self) -> &LambdaSpec {
        &self.pool.function.spec
    }

    /// What the reload thread watches: the executable, or for an
    /// interpreter command the function's directory. Nothing for a program
    /// without arguments found in `PATH`.
    pub fn watched_path(&self) -> Option<PathBuf> {
        let spec = self.spec();
        if spec.is_interpreted() {
            Some(spec.dir.clone())
        } else {
            spec.program.is_absolute().then(|| spec.program.clone())
        }
    }

    /// `path` was written: new invocations go to instances of the new code.
    pub fn file_changed(&self, path: &Path) {
        let spec = self.spec();
        if spec.is_interpreted() {
            let in_dir = path.parent() == Some(spec.dir.as_path());
            if in_dir && !is_noise(path) {
                self.pool
                    .new_generation(&format!("{} changed", path.display()));
            }
        } else if path == spec.program {
            self.recheck();
        }
    }

    /// Compares the executable with the version serving.
    pub fn recheck(&self) {
        let spec = self.spec();
        if spec.is_interpreted() || !spec.program.is_absolute() {
            return;
        }
        let Ok(now) = FileVersion::of(&spec.program) else {
            return;
        };
        let mut seen = self.seen_version.lock();
        if *seen != Some(now) {
            *seen = Some(now);
            drop(seen);
            self.pool
                .new_generation(&format!("{} changed", spec.program.display()));
        }
    }
}

/// Files whose changes are not code: hidden and editor backup files, and
/// Python's bytecode cache.
fn is_noise(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name == "__pycache__"
        || name.ends_with(".pyc")
}

/// Serves one HTTP request with `function`, as a Function URL would.
pub async fn serve(
    env: &TargetEnv,
    function: &LambdaFunction,
    request: Request<RequestBody>,
    call: CallInfo<'_>,
) -> Served {
    let (parts, body) = request.into_parts();
    let body = match whole_body::read_whole(body, env.max_body_bytes, env.body_timeout).await {
        Ok(body) => body,
        Err(reply) => return Served::plain(reply.into_response()),
    };
    let started = Instant::now();
    let event = event::request_event(&parts, &body, call.peer_ip, call.secure, SystemTime::now());
    if event.len() > MAX_PAYLOAD {
        return Served::plain(aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        ));
    }
    let outcome = function
        .pool
        .invoke(Bytes::from(event), None, pool::Waiting::Queue)
        .await;
    let response = http_response(&function.spec().name, outcome);
    Served {
        response,
        usage: crate::arena::ArenaUsage::default(),
        note: Some(TargetNote {
            kind: "lambda",
            who: function.spec().name.clone(),
            time: started.elapsed(),
        }),
        fields: None,
    }
}

/// What a Function URL client gets for `outcome`.
pub(crate) fn http_response(name: &str, outcome: Outcome) -> Response<ReplyBody> {
    match outcome {
        Outcome::Response(result) => event::result_response(&result).unwrap_or_else(|error| {
            logs::line(
                name,
                &format!("Invalid result for an HTTP response: {error}"),
            );
            aws_error(StatusCode::BAD_GATEWAY, "Internal Server Error")
        }),
        Outcome::Streaming {
            prelude,
            content_type,
            body,
        } => {
            let head = match &prelude {
                Some(prelude) => event::prelude_head(prelude),
                None => Ok((StatusCode::OK, hyper::HeaderMap::new())),
            };
            match head {
                Ok((status, mut headers)) => {
                    if !headers.contains_key(CONTENT_TYPE) {
                        let fallback = prelude
                            .is_none()
                            .then_some(content_type)
                            .flatten()
                            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
                        headers.insert(CONTENT_TYPE, fallback);
                    }
                    let mut response = Response::new(ReplyBody::Channel(body));
                    *response.status_mut() = status;
                    *response.headers_mut() = headers;
                    response
                }
                Err(error) => {
                    logs::line(name, &format!("Invalid streaming prelude: {error}"));
                    aws_error(StatusCode::BAD_GATEWAY, "Internal Server Error")
                }
            }
        }
        Outcome::Failed(_) => aws_error(StatusCode::BAD_GATEWAY, "Internal Server Error"),
        Outcome::Throttled => aws_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
    }
}

/// `{"Message": …}` as a Function URL answers errors, with its status.
fn aws_error(status: StatusCode, message: &str) -> Response<ReplyBody> {
    let body = json!({ "Message": message }).to_string();
    let mut response = Response::new(ReplyBody::Full(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
