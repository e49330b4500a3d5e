//! HTTP/2 to an upstream (`h2=true`): one multiplexed connection per
//! server per I/O thread (hyper's `client::conn::http2`), its I/O driven
//! by a task of that thread's runtime. Prior knowledge on `http://`, ALPN
//! `h2` on `https://`.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;

use super::connection::{ConnectError, RequestBody, SendError};
use super::group::UpstreamServer;
use super::idle_pool::thread_index;
use super::stream::{self, Protocol};

/// A server's HTTP/2 connections, tagged with the thread that opened them.
#[derive(Default)]
pub struct Http2Conns(Mutex<Vec<(usize, http2::SendRequest<RequestBody>)>>);

impl std::fmt::Debug for Http2Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Conns").finish_non_exhaustive()
    }
}

/// Why an HTTP/2 request got no response head.
#[derive(Debug, thiserror::Error)]
pub enum Http2Error {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl Http2Conns {
    /// This thread's open connection, if any.
    fn current(&self, thread: usize) -> Option<http2::SendRequest<RequestBody>> {
        let mut conns = self.0.lock();
        conns.retain(|(_, sender)| !sender.is_closed());
        conns
            .iter()
            .find(|(owner, _)| *owner == thread)
            .map(|(_, sender)| sender.clone())
    }

    /// Opens a connection to `server` for this thread.
    async fn open(
        &self,
        server: &UpstreamServer,
        timeout: Duration,
        thread: usize,
    ) -> Result<http2::SendRequest<RequestBody>, ConnectError> {
        let io = stream::connect(server, Protocol::Http2, timeout).await?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(io))
            .await?;
        let authority = server.authority.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(upstream = %authority, %error, "HTTP/2 upstream connection ended");
            }
        });
        let mut conns = self.0.lock();
        conns.retain(|(owner, _)| *owner != thread);
        conns.push((thread, sender.clone()));
        Ok(sender)
    }

    /// Sends `request` on this thread's connection to `server` (opened
    /// within `timeout` if there is none, or again if the one there closed
    /// before taking the request).
    pub async fn send(
        &self,
        server: &UpstreamServer,
        request: Request<RequestBody>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, Http2Error> {
        let thread = thread_index();
        let (mut sender, reused) = match self.current(thread) {
            Some(sender) => (sender, true),
            None => (self.open(server, timeout, thread).await?, false),
        };
        let request = match sender.ready().await {
            Ok(()) => match sender.try_send_request(request).await {
                Ok(response) => return Ok(response),
                Err(error) => match SendError::from(error) {
                    SendError::Unsent { request, .. } if reused => *request,
                    error => return Err(error.into()),
                },
            },
            Err(_) if reused => request,
            Err(error) => return Err(SendError::Failed(error).into()),
        };
        let mut sender = self.open(server, timeout, thread).await?;
        sender
            .ready()
            .await
            .map_err(|error| Http2Error::Send(SendError::Failed(error)))?;
        Ok(sender
            .send_request(request)
            .await
            .map_err(SendError::Failed)?)
    }
}
