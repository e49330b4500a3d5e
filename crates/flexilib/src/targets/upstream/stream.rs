//! The byte stream to an upstream server: TCP, or TLS over TCP for an
//! `https://` server; and connecting it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::group::UpstreamServer;

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Not connected (TCP and TLS) within the connect timeout.
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    /// Refused, unreachable, or the name did not resolve.
    #[error("connect failed: {0}")]
    Io(#[from] io::Error),
    /// The TLS handshake failed (a certificate that does not verify, no
    /// common protocol, or ALPN `h2` refused).
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    /// The server's name is no valid TLS server name.
    #[error("`{0}` is no name to verify a certificate against")]
    ServerName(String),
    /// The HTTP handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] hyper::Error),
}

impl ConnectError {
    /// True if the connection timed out (504 rather than 502).
    pub fn is_timeout(&self) -> bool {
        match self {
            ConnectError::Timeout(_) => true,
            ConnectError::Io(error) => error.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }
}

/// A connected stream to an upstream.
pub enum UpstreamStream {
    /// `http://`.
    Plain(TcpStream),
    /// `https://` (boxed: a TLS connection's state is large).
    Tls(Box<TlsStream<TcpStream>>),
}

/// The application protocol to ask for (ALPN) on an https server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// Connects to `server` (TCP, then TLS for https, asking for `protocol`)
/// within `timeout`.
pub async fn connect(
    server: &UpstreamServer,
    protocol: Protocol,
    timeout: Duration,
) -> Result<UpstreamStream, ConnectError> {
    let connect = async {
        let stream = match server.addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(server.authority.as_str()).await,
        }?;
        stream.set_nodelay(true)?;
        let Some(tls) = &server.tls else {
            return Ok(UpstreamStream::Plain(stream));
        };
        let name = tls
            .server_name(&server.host)
            .ok_or_else(|| ConnectError::ServerName(server.host.clone()))?;
        let connector = match protocol {
            Protocol::Http1 => &tls.http1,
            Protocol::Http2 => &tls.http2,
        };
        let stream = connector
            .connect(name, stream)
            .await
            .map_err(ConnectError::Tls)?;
        if protocol == Protocol::Http2 && stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(ConnectError::Tls(io::Error::other(
                "the server did not agree to ALPN `h2` (h2=true)",
            )));
        }
        Ok(UpstreamStream::Tls(Box::new(stream)))
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            UpstreamStream::Tls(stream) => Pin::new(&mut **stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            UpstreamStream::Tls(stream) => Pin::new(&mut **stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(stream) => Pin::new(&mut **stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Plain(stream) => stream.is_write_vectored(),
            UpstreamStream::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            UpstreamStream::Tls(stream) => Pin::new(&mut **stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            UpstreamStream::Tls(stream) => Pin::new(&mut **stream).poll_shutdown(cx),
        }
    }
}
