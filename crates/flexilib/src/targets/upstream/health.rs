//! Active health checks (`health=/path interval=SECONDS`): one task per
//! upstream group, on the control runtime, probes every server with a
//! `GET` each interval. A server whose probe fails (a status other than
//! 2xx or 3xx, no answer within the interval, a refused connection or
//! handshake) is out of rotation until a probe succeeds; each change is
//! logged. The task ends when the group is dropped (a reload replaced it).

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderValue, CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::MissedTickBehavior;

use super::group::{UpstreamGroup, UpstreamServer};
use super::stream::{self, ConnectError, Protocol};
use crate::config::HealthSpec;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("request failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("bad probe request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// Starts `group`'s health checks on the control runtime (once it runs).
pub fn start(group: &Arc<UpstreamGroup>, spec: &HealthSpec) {
    crate::control::spawn_soon(run(Arc::downgrade(group), spec.clone()));
}

async fn run(group: Weak<UpstreamGroup>, spec: HealthSpec) {
    let mut ticks = tokio::time::interval(spec.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(group) = group.upgrade() else {
            return;
        };
        let mut probes = tokio::task::JoinSet::new();
        for index in 0..group.len() {
            let (group, path, interval) = (Arc::clone(&group), spec.path.clone(), spec.interval);
            probes.spawn(async move {
                let server = group.server(index);
                let result = probe(server, &path, group.h2, interval).await;
                note(server, &path, result);
            });
        }
        while probes.join_next().await.is_some() {}
    }
}

/// Records a probe's outcome, logging a change.
fn note(server: &UpstreamServer, path: &str, result: Result<StatusCode, ProbeError>) {
    match result {
        Ok(status) => {
            if server.set_healthy(true) {
                tracing::info!(upstream = %server.authority, health = path, %status, "upstream server passed its health check; back in rotation");
            }
        }
        Err(error) => {
            if server.set_healthy(false) {
                tracing::warn!(upstream = %server.authority, health = path, %error, "upstream server failed its health check; out of rotation");
            }
        }
    }
}

/// One probe: `GET path` on a new connection, answered 2xx or 3xx within
/// `timeout`.
async fn probe(
    server: &UpstreamServer,
    path: &str,
    h2: bool,
    timeout: Duration,
) -> Result<StatusCode, ProbeError> {
    let exchange = async {
        let protocol = if h2 { Protocol::Http2 } else { Protocol::Http1 };
        let io = TokioIo::new(stream::connect(server, protocol, timeout).await?);
        let mut request = Request::get(path)
            .header(USER_AGENT, "flexilib-health-check")
            .body(Empty::<Bytes>::new())?;
        let status = if h2 {
            *request.uri_mut() = Uri::builder()
                .scheme(server.scheme())
                .authority(server.authority.as_str())
                .path_and_query(path)
                .build()?;
            *request.version_mut() = Version::HTTP_2;
            let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await
                .map_err(ConnectError::from)?;
            // Driven here, not spawned: a probe that times out takes its
            // connection with it. No request left, it says GOAWAY and ends.
            let ask = async move {
                let status = read(sender.send_request(request).await?).await;
                drop(sender);
                Ok::<_, ProbeError>(status)
            };
            tokio::join!(ask, connection).0?
        } else {
            let headers = request.headers_mut();
            headers.insert(
                HOST,
                HeaderValue::from_str(&server.authority).map_err(hyper::http::Error::from)?,
            );
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
            let (mut sender, connection) =
                http1::handshake(io).await.map_err(ConnectError::from)?;
            // `Connection: close`: it ends after the answer.
            let ask = async move {
                let status = read(sender.send_request(request).await?).await;
                drop(sender);
                Ok::<_, ProbeError>(status)
            };
            tokio::join!(ask, connection).0?
        };
        if status.is_success() || status.is_redirection() {
            Ok(status)
        } else {
            Err(ProbeError::Status(status))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
}

/// Most of a probe answer's body that is read (and dropped) so that its
/// connection ends cleanly; a longer one is cut off.
const PROBE_BODY_LIMIT: usize = 64 * 1024;

/// The answer's status, once its body has been read (up to
/// [`PROBE_BODY_LIMIT`]; a body that fails does not fail the probe).
async fn read(response: Response<Incoming>) -> StatusCode {
    let status = response.status();
    let _ = Limited::new(response.into_body(), PROBE_BODY_LIMIT)
        .collect()
        .await;
    status
}
