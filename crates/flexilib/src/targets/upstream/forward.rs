//! Forwarding one request to an upstream server.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::HOST;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};

use super::connection::{BoxError, ConnectError, RequestBody, SendError, UpstreamConn};
use super::group::{UpstreamGroup, UpstreamServer};
use super::headers;
use super::http2::Http2Error;
use super::idle_pool::thread_index;
use super::request_body::BodyError;
use super::response_body::{Lease, UpstreamBody};
use super::tunnel::{self, Tunnels};

/// Timeouts and health settings of the proxy.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Time to establish a connection to an upstream (TCP, and TLS for
    /// https).
    pub connect_timeout: Duration,
    /// Time from sending the request to the upstream's response head.
    pub response_timeout: Duration,
    /// How long a pooled idle upstream connection is kept.
    pub idle_timeout: Duration,
    /// How long a server that failed a connection is skipped.
    pub cooldown: Duration,
}

/// The proxy's client. Connections are pooled per upstream server (in its
/// [`UpstreamServer`]), not here.
pub struct ProxyClient {
    settings: ProxySettings,
    tunnels: Tunnels,
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
    /// The client's request body could not be read (malformed chunks, or
    /// the client left mid-body): 400, the upstream is not to blame.
    ClientBody,
}

impl ProxyFailure {
    /// The status to answer with.
    pub fn status(self) -> StatusCode {
        match self {
            ProxyFailure::BadGateway => StatusCode::BAD_GATEWAY,
            ProxyFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyFailure::DotSegment | ProxyFailure::ClientBody => StatusCode::BAD_REQUEST,
        }
    }
}

/// The outcome of forwarding.
pub struct Forwarded {
    /// The upstream's response, headers already rewritten for the client.
    pub response: Result<Response<UpstreamBody>, ProxyFailure>,
    /// The server that answered (or failed last).
    pub upstream: Option<String>,
    /// Time from sending the request to the response head.
    pub upstream_time: Duration,
}

/// Why one attempt got no response head.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl From<Http2Error> for AttemptError {
    fn from(error: Http2Error) -> Self {
        match error {
            Http2Error::Connect(error) => AttemptError::Connect(error),
            Http2Error::Send(error) => AttemptError::Send(error),
        }
    }
}

impl ProxyClient {
    /// A client with `settings`.
    pub fn new(settings: ProxySettings) -> Self {
        Self {
            settings,
            tunnels: Tunnels::default(),
        }
    }

    /// How many upgrade tunnels are open.
    pub fn open_tunnels(&self) -> usize {
        self.tunnels.open()
    }

    /// Forwards `request` from `client_ip` to `group` (for a route whose path
    /// prefix is `prefix`), streaming bodies both ways; tunnels protocol
    /// upgrades (WebSocket).
    pub async fn forward<B>(
        &self,
        group: &UpstreamGroup,
        prefix: &str,
        mut request: Request<B>,
        client_ip: &str,
        secure: bool,
    ) -> Forwarded
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        // An HTTP/1.0 request's `Upgrade` is ignored (RFC 9110 §7.8): it is
        // forwarded as a plain request, `Upgrade` removed with the other
        // hop-by-hop fields.
        let upgrade =
            request.version() == Version::HTTP_11 && headers::is_upgrade(request.headers());
        let mut client_side = upgrade.then(|| tunnel::client_side(&mut request)).flatten();
        let (mut head, body) = request.into_parts();
        let has_body = !body.is_end_stream();
        let retryable = is_idempotent(&head.method) && !has_body && group.len() > 1;
        let head_request = head.method == Method::HEAD;
        let client_body_failed = has_body.then(|| Arc::new(AtomicBool::new(false)));
        let mut body = client_body_failed.as_ref().map(|failed| {
            Watched {
                body,
                failed: Arc::clone(failed),
            }
            .map_err(|error| BodyError(error.into()))
            .boxed_unsync()
        });
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
            let Some(target) =
                group.upstream_target(index, prefix, head.uri.path(), head.uri.query())
            else {
                return failed(ProxyFailure::DotSegment, None, Duration::ZERO);
            };
            let Ok(uri) = Uri::try_from(target) else {
                return failed(
                    ProxyFailure::BadGateway,
                    Some(server.authority.clone()),
                    Duration::ZERO,
                );
            };
            rewrite_headers(&mut headers, group, server, client_ip, secure, upgrade);
            // HTTP/2 (not for an upgrade, which goes over HTTP/1.1): the
            // target in absolute form, `Host` as its authority.
            let http2 = group.h2 && !upgrade;
            let (uri, version) = if http2 {
                match absolute(server, &mut headers, uri) {
                    Some(uri) => (uri, Version::HTTP_2),
                    None => {
                        return failed(
                            ProxyFailure::BadGateway,
                            Some(server.authority.clone()),
                            Duration::ZERO,
                        )
                    }
                }
            } else {
                (uri, Version::HTTP_11)
            };
            let mut upstream_request = Request::new(match body.take() {
                Some(body) => RequestBody::Stream(body),
                None => RequestBody::Empty,
            });
            *upstream_request.method_mut() = head.method.clone();
            *upstream_request.uri_mut() = uri;
            *upstream_request.version_mut() = version;
            *upstream_request.headers_mut() = headers;
            let in_flight = group.track(index);

            let sent = Instant::now();
            let result = tokio::time::timeout(
                self.settings.response_timeout,
                self.exchange(server, upstream_request, upgrade, http2),
            )
            .await;
            let upstream_time = sent.elapsed();
            let authority = Some(server.authority.clone());
            match result {
                Ok(Ok((response, conn))) => {
                    let mut response =
                        self.answer(server, response, conn, upgrade, &mut client_side);
                    if head_request {
                        response = response.map(UpstreamBody::for_head);
                    }
                    if let Some(in_flight) = in_flight {
                        response = response.map(|body| body.counted(in_flight));
                    }
                    return Forwarded {
                        response: Ok(response),
                        upstream: authority,
                        upstream_time,
                    };
                }
                Ok(Err(AttemptError::Connect(error))) => {
                    tracing::warn!(upstream = %server.authority, %error, "upstream connection failed; skipping it for a while");
                    group.mark_down(index, self.settings.cooldown);
                    last = (
                        if error.is_timeout() {
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
                Ok(Err(AttemptError::Send(error)))
                    if client_body_failed
                        .as_ref()
                        .is_some_and(|failed| failed.load(Ordering::Acquire)) =>
                {
                    // The client's fault, not the upstream's: no warning.
                    tracing::debug!(upstream = %server.authority, %error, "request body unreadable; not forwarded in full");
                    return failed(ProxyFailure::ClientBody, authority, upstream_time);
                }
                Ok(Err(AttemptError::Send(error))) => {
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

    /// Sends `request` to `server` on a pooled connection of this thread's,
    /// or a new one; the response head and the connection to read its body
    /// through (none for HTTP/2, whose connection drives itself). A pooled
    /// connection the upstream closed meanwhile hands the request back,
    /// which then goes on a new connection.
    async fn exchange(
        &self,
        server: &UpstreamServer,
        request: Request<RequestBody>,
        upgrade: bool,
        http2: bool,
    ) -> Result<(Response<Incoming>, Option<UpstreamConn>), AttemptError> {
        if http2 {
            let response = server
                .http2
                .send(server, request, self.settings.connect_timeout)
                .await?;
            return Ok((response, None));
        }
        let pooled = {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            server.pool.checkout(self.settings.idle_timeout, &mut cx)
        };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(mut conn) => {
                if upgrade {
                    conn.allow_upgrades();
                }
                conn
            }
            None => self.connect(server, upgrade).await?,
        };
        match conn.send(request).await {
            Ok(response) => Ok((response, Some(conn))),
            Err(SendError::Unsent { request, .. }) if reused => {
                let mut conn = self.connect(server, upgrade).await?;
                let response = conn.send(*request).await?;
                Ok((response, Some(conn)))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn connect(
        &self,
        server: &UpstreamServer,
        upgrade: bool,
    ) -> Result<UpstreamConn, ConnectError> {
        let mut conn =
            UpstreamConn::open(server, self.settings.connect_timeout, thread_index()).await?;
        if upgrade {
            conn.allow_upgrades();
        }
        Ok(conn)
    }

    /// The upstream's response for the client: its version and headers
    /// rewritten, its body read through `conn` (which goes back to the pool
    /// at the end), or a tunnel started after a `101` to an upgrade.
    fn answer(
        &self,
        server: &UpstreamServer,
        mut response: Response<Incoming>,
        conn: Option<UpstreamConn>,
        upgrade: bool,
        client_side: &mut Option<crate::http1::OnUpgrade>,
    ) -> Response<UpstreamBody> {
        // A proxy answers in its own version (RFC 9110 §6.2), not the
        // upstream's: an HTTP/1.0 upstream must not make the status line
        // `HTTP/1.0`. The codec answers every client in HTTP/1.1.
        *response.version_mut() = Version::HTTP_11;
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        headers::to_client(response.headers_mut(), switching && upgrade);
        let Some(conn) = conn else {
            return response.map(UpstreamBody::detached);
        };
        if switching && upgrade {
            if let Some(client_side) = client_side.take() {
                self.tunnels.start(client_side, conn, &mut response);
                return response.map(UpstreamBody::detached);
            }
        }
        let lease = Lease::new(conn, Arc::clone(&server.pool), self.settings.idle_timeout);
        response.map(|body| UpstreamBody::new(body, lease))
    }
}

/// The request's headers for `server`: hop-by-hop ones removed,
/// `X-Forwarded-*` and `Via` added, `Host` the upstream's when the route
/// says so (or when the client sent none, as HTTP/1.1 requires one).
fn rewrite_headers(
    headers: &mut HeaderMap,
    group: &UpstreamGroup,
    server: &UpstreamServer,
    client_ip: &str,
    secure: bool,
    upgrade: bool,
) {
    headers::to_upstream(
        headers,
        client_ip,
        secure,
        group.host_upstream.then_some(server.authority.as_str()),
        upgrade,
    );
    if !headers.contains_key(HOST) {
        if let Ok(value) = server.authority.parse() {
            headers.insert(HOST, value);
        }
    }
}

/// The absolute-form target an HTTP/2 request needs (`:scheme`,
/// `:authority`): the authority is the `Host` the request would have had
/// (removed from the fields).
fn absolute(server: &UpstreamServer, headers: &mut HeaderMap, uri: Uri) -> Option<Uri> {
    let host = headers.remove(HOST);
    let authority = host
        .as_ref()
        .and_then(|host| host.to_str().ok())
        .unwrap_or(&server.authority);
    let mut parts = uri.into_parts();
    parts.scheme = Some(if server.https {
        hyper::http::uri::Scheme::HTTPS
    } else {
        hyper::http::uri::Scheme::HTTP
    });
    parts.authority = Some(authority.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// The client's request body on its way upstream, noting a failure to read
/// it (then the request fails by the client's fault, not the upstream's).
struct Watched<B> {
    body: B,
    failed: Arc<AtomicBool>,
}

impl<B: Body + Unpin> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &frame {
            self.failed.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
