//! Forwarding one request to an upstream server.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::{Body, Incoming};

use crate::http1::{OnUpgrade, RequestBody};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::group::UpstreamGroup;
use super::headers;

/// Body sent upstream: the client's, streamed, or nothing (for requests
/// that can be retried).
type UpstreamBody = Either<RequestBody, Empty<Bytes>>;

/// Timeouts and health settings of the proxy.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Time to establish a TCP connection to an upstream.
    pub connect_timeout: Duration,
    /// Time from sending the request to the upstream's response head.
    pub response_timeout: Duration,
    /// How long a pooled idle upstream connection is kept.
    pub idle_timeout: Duration,
    /// How long a server that failed a connection is skipped.
    pub cooldown: Duration,
}

type PooledClient = Client<HttpConnector, UpstreamBody>;

thread_local! {
    /// This I/O thread's client, with the id of the [`ProxyClient`] it was
    /// built for.
    static THREAD_CLIENT: RefCell<Option<(u64, PooledClient)>> = const { RefCell::new(None) };
}

/// Ids of [`ProxyClient`]s, so a thread's pool is never one built for
/// another's settings.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The proxy: a keep-alive connection pool per upstream and I/O thread.
///
/// Each I/O thread has its own pool (built on first use): a pooled
/// connection's task and socket belong to the runtime that opened it, and a
/// connection shared with a thread stalled in a library call would stall
/// the requests of every other thread that used it.
pub struct ProxyClient {
    id: u64,
    settings: ProxySettings,
    /// Open upgrade tunnels, which graceful shutdown waits for like connections.
    tunnels: Arc<AtomicUsize>,
}

/// Why a request got no upstream response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFailure {
    /// Refused, unreachable, or failed: 502.
    BadGateway,
    /// No response (or no connection) in time: 504.
    Timeout,
    /// Replacing the route's prefix by the base path would have made a
    /// dot segment (`/api../x` for prefix `/api`): 400, nothing sent.
    DotSegment,
}

impl ProxyFailure {
    /// The status to answer with.
    pub fn status(self) -> StatusCode {
        match self {
            ProxyFailure::BadGateway => StatusCode::BAD_GATEWAY,
            ProxyFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyFailure::DotSegment => StatusCode::BAD_REQUEST,
        }
    }
}

/// The outcome of forwarding.
pub struct Forwarded {
    /// The upstream's response, headers already rewritten for the client.
    pub response: Result<Response<Incoming>, ProxyFailure>,
    /// The server that answered (or failed last).
    pub upstream: Option<String>,
    /// Time from sending the request to the response head.
    pub upstream_time: Duration,
}

impl ProxyClient {
    /// A client with `settings`.
    pub fn new(settings: ProxySettings) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            settings,
            tunnels: Arc::default(),
        }
    }

    /// Sends `request` on this thread's pool, built now if need be.
    fn send(&self, request: Request<UpstreamBody>) -> hyper_util::client::legacy::ResponseFuture {
        THREAD_CLIENT.with(|cell| {
            let mut slot = cell.borrow_mut();
            match &*slot {
                Some((id, client)) if *id == self.id => client.request(request),
                _ => {
                    let client = self.build_client();
                    let sent = client.request(request);
                    *slot = Some((self.id, client));
                    sent
                }
            }
        })
    }

    fn build_client(&self) -> PooledClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(self.settings.connect_timeout));
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.settings.idle_timeout)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector)
    }

    /// How many upgrade tunnels are open.
    pub fn open_tunnels(&self) -> usize {
        self.tunnels.load(Ordering::Acquire)
    }

    /// Forwards `request` from `client_ip` to `group` (for a route whose path
    /// prefix is `prefix`), streaming bodies both ways; tunnels protocol
    /// upgrades (WebSocket).
    pub async fn forward(
        &self,
        group: &UpstreamGroup,
        prefix: &str,
        mut request: Request<RequestBody>,
        client_ip: &str,
    ) -> Forwarded {
        let upgrade = headers::is_upgrade(request.headers());
        let client_side = upgrade
            .then(|| request.extensions_mut().remove::<OnUpgrade>())
            .flatten();
        let (mut head, body) = request.into_parts();
        let retryable = is_idempotent(&head.method) && body.is_end_stream() && group.len() > 1;
        let mut body = if retryable { None } else { Some(body) };
        // Headers are cloned per attempt only when a retry is possible.
        let mut original_headers = Some(std::mem::take(&mut head.headers));

        let mut tried = Vec::with_capacity(2);
        let mut last = (ProxyFailure::BadGateway, None, Duration::ZERO);
        while let Some(index) = group.pick(&tried) {
            tried.push(index);
            let server = group.server(index);
            let mut headers = match (&original_headers, retryable) {
                (Some(original), true) => original.clone(),
                _ => original_headers.take().unwrap_or_default(),
            };
            headers::to_upstream(
                &mut headers,
                client_ip,
                group.host_upstream.then_some(server.authority.as_str()),
                upgrade,
            );
            let Some(target) =
                group.upstream_target(index, prefix, head.uri.path(), head.uri.query())
            else {
                return failed(ProxyFailure::DotSegment, None, Duration::ZERO);
            };
            let uri = server.parsed_authority.clone().and_then(|authority| {
                let mut parts = hyper::http::uri::Parts::default();
                parts.scheme = Some(hyper::http::uri::Scheme::HTTP);
                parts.authority = Some(authority);
                parts.path_and_query = target.parse().ok();
                Uri::from_parts(parts).ok()
            });
            let Some(uri) = uri else {
                return failed(
                    ProxyFailure::BadGateway,
                    Some(server.authority.clone()),
                    Duration::ZERO,
                );
            };
            let mut upstream_request = Request::new(match body.take() {
                Some(body) => Either::Left(body),
                None => Either::Right(Empty::new()),
            });
            *upstream_request.method_mut() = head.method.clone();
            *upstream_request.uri_mut() = uri;
            *upstream_request.version_mut() = Version::HTTP_11;
            *upstream_request.headers_mut() = headers;

            let sent = Instant::now();
            let result =
                tokio::time::timeout(self.settings.response_timeout, self.send(upstream_request))
                    .await;
            let upstream_time = sent.elapsed();
            let authority = Some(server.authority.clone());
            match result {
                Ok(Ok(mut response)) => {
                    // A proxy answers in its own version (RFC 9110 §6.2),
                    // not the upstream's: an HTTP/1.0 upstream must not make
                    // the status line `HTTP/1.0`. hyper still answers an
                    // HTTP/1.0 client in HTTP/1.0.
                    *response.version_mut() = Version::HTTP_11;
                    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
                    headers::to_client(response.headers_mut(), switching && upgrade);
                    if switching {
                        if let Some(client_side) = client_side {
                            tunnel(
                                Arc::clone(&self.tunnels),
                                client_side,
                                hyper::upgrade::on(&mut response),
                            );
                        }
                    }
                    return Forwarded {
                        response: Ok(response),
                        upstream: authority,
                        upstream_time,
                    };
                }
                Ok(Err(error)) if error.is_connect() => {
                    let timed_out = is_timeout(&error);
                    tracing::warn!(upstream = %server.authority, %error, "upstream connection failed; skipping it for a while");
                    group.mark_down(index, self.settings.cooldown);
                    last = (
                        if timed_out {
                            ProxyFailure::Timeout
                        } else {
                            ProxyFailure::BadGateway
                        },
                        authority,
                        upstream_time,
                    );
                    // Nothing was sent: a bodiless idempotent request may go
                    // to one other server.
                    if retryable && tried.len() < 2 {
                        continue;
                    }
                    break;
                }
                Ok(Err(error)) => {
                    tracing::warn!(upstream = %server.authority, %error, "upstream request failed");
                    return failed(ProxyFailure::BadGateway, authority, upstream_time);
                }
                Err(_) => {
                    tracing::warn!(upstream = %server.authority, timeout = ?self.settings.response_timeout, "upstream response timed out");
                    return failed(ProxyFailure::Timeout, authority, upstream_time);
                }
            }
        }
        failed(last.0, last.1, last.2)
    }
}

fn failed(failure: ProxyFailure, upstream: Option<String>, upstream_time: Duration) -> Forwarded {
    Forwarded {
        response: Err(failure),
        upstream,
        upstream_time,
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// True if a connect error was a timeout.
fn is_timeout(error: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
            || cause.to_string().contains("timed out")
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Copies bytes both ways between the upgraded client and upstream
/// connections until either side closes.
/// `open` counts the tunnel while it lasts.
fn tunnel(open: Arc<AtomicUsize>, client: OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    struct Open(Arc<AtomicUsize>);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    open.fetch_add(1, Ordering::AcqRel);
    let open = Open(open);
    tokio::spawn(async move {
        let _open = open;
        let (client, upstream) = tokio::join!(client, upstream);
        let (mut client, upstream) = match (client, upstream) {
            (Ok(client), Ok(upstream)) => (client, upstream),
            (Err(error), _) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
            (_, Err(error)) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        let mut upstream = TokioIo::new(upstream);
        if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            tracing::debug!(%error, "tunnel closed with an error");
        }
    });
}
