//! The byte stream of a connection.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::Activity;

/// A connection's byte stream: readable and writable, and able to say when
/// it is readable without reading (to wait on a parked connection).
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Ready when a read would not block.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>>;

    /// Whether the client reached the server over TLS.
    fn is_tls(&self) -> bool {
        false
    }
}

impl Transport for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
}

/// A TLS connection is always "ready": rustls may hold plaintext that
/// arrived with the handshake (a TLS 1.3 client sends its request with
/// its Finished) while the socket has nothing more, so waiting for the
/// socket could wait for ever. The read that follows goes through the
/// thread's scratch buffer and waits on rustls's own waker if nothing is
/// there, so a parked TLS connection still holds no buffer.
impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// The stream, counting bytes read and written for the watchdog and the
/// log.
pub struct CountingStream<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: Transport> CountingStream<T> {
    /// `inner`, reporting to `activity`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }

    /// Waits until the stream is readable.
    pub async fn readable(&self) -> std::io::Result<()> {
        poll_fn(|cx| self.inner.poll_read_ready(cx)).await
    }

    fn note_write(&self, result: &Poll<std::io::Result<usize>>) {
        self.activity
            .write_blocked
            .store(result.is_pending(), Ordering::Relaxed);
        if let Poll::Ready(Ok(written)) = result {
            self.activity
                .bytes_written
                .fetch_add(*written as u64, Ordering::Relaxed);
        }
    }
}

impl<T: Transport> AsyncRead for CountingStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.activity
                .bytes_read
                .fetch_add(read as u64, Ordering::Relaxed);
        }
        result
    }
}

impl<T: Transport> AsyncWrite for CountingStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
