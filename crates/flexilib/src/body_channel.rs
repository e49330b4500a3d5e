//! A response body produced elsewhere (a library's thread, a function
//! process) and sent to the client as it comes, with back-pressure.
//!
//! The producer holds a [`BodySender`], the response holds the
//! [`BodyReceiver`]. Chunks are accepted while fewer than `limit` bytes are
//! buffered (so at most `limit` plus one chunk wait in memory); past that
//! the producer is told to wait: [`BodySender::try_send`] says `Full` and
//! [`BodySender::on_writable`] calls back once there is room, while
//! [`BodySender::send_blocking`] and [`BodySender::send`] wait (a thread or
//! a task). The producer ends the body with [`BodySender::finish`], or
//! [`BodySender::abort`] (the connection is then cut, so a truncated body
//! never looks complete); a sender dropped without either aborts. When the
//! client goes away every waiting producer is released with `Closed`.

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Why a chunk was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The buffer is full: wait for [`BodySender::on_writable`] and retry.
    #[error("the body buffer is full")]
    Full(Bytes),
    /// The client went away, or the body already ended.
    #[error("the body is closed")]
    Closed,
}

/// The body was cut short by its producer.
#[derive(Debug, thiserror::Error)]
#[error("the response body was aborted by its producer")]
pub struct Aborted;

/// A callback run once when the buffer has room again (or closes).
type Writable = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    /// `Some(true)`: finished; `Some(false)`: aborted.
    ended: Option<bool>,
    /// The receiver is gone.
    closed: bool,
    receiver: Option<Waker>,
    writable_wakers: Vec<Waker>,
    writable_callbacks: Vec<Writable>,
}

struct Shared {
    state: Mutex<State>,
    room: Condvar,
    limit: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Wakes every waiting producer (room, or closed). Callbacks run
    /// outside the lock.
    fn wake_producers(&self, mut state: MutexGuard<'_, State>) {
        let wakers = std::mem::take(&mut state.writable_wakers);
        let callbacks = std::mem::take(&mut state.writable_callbacks);
        drop(state);
        self.room.notify_all();
        wakers.into_iter().for_each(Waker::wake);
        callbacks.into_iter().for_each(|callback| callback());
    }
}

/// The producing end. Several threads may share it (in an `Arc`).
pub struct BodySender {
    shared: Arc<Shared>,
}

/// The consuming end: a response body.
pub struct BodyReceiver {
    shared: Arc<Shared>,
}

/// A channel buffering up to `limit` bytes (plus one chunk).
pub fn channel(limit: usize) -> (BodySender, BodyReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        room: Condvar::new(),
        limit: limit.max(1),
    });
    (
        BodySender {
            shared: Arc::clone(&shared),
        },
        BodyReceiver { shared },
    )
}

impl BodySender {
    /// Queues `chunk` if there is room.
    pub fn try_send(&self, chunk: Bytes) -> Result<(), SendError> {
        let mut state = self.shared.lock();
        if state.closed || state.ended.is_some() {
            return Err(SendError::Closed);
        }
        if state.buffered >= self.shared.limit {
            return Err(SendError::Full(chunk));
        }
        if chunk.is_empty() {
            return Ok(());
        }
        state.buffered += chunk.len();
        state.chunks.push_back(chunk);
        let receiver = state.receiver.take();
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Ok(())
    }

    /// Queues `chunk`, blocking the calling thread while the buffer is full.
    pub fn send_blocking(&self, mut chunk: Bytes) -> Result<(), SendError> {
        loop {
            match self.try_send(chunk) {
                Err(SendError::Full(back)) => chunk = back,
                other => return other,
            }
            let mut state = self.shared.lock();
            if state.buffered >= self.shared.limit && !state.closed {
                self.shared.room.wait(&mut state);
            }
        }
    }

    /// Queues `chunk`, waiting (asynchronously) while the buffer is full.
    pub async fn send(&self, mut chunk: Bytes) -> Result<(), SendError> {
        loop {
            match self.try_send(chunk) {
                Err(SendError::Full(back)) => chunk = back,
                other => return other,
            }
            std::future::poll_fn(|cx| {
                let mut state = self.shared.lock();
                if state.buffered < self.shared.limit || state.closed {
                    Poll::Ready(())
                } else {
                    state.writable_wakers.push(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
        }
    }

    /// Runs `callback` once when the buffer has room (at once if it has),
    /// or when the body closes.
    pub fn on_writable(&self, callback: impl FnOnce() + Send + 'static) {
        let mut state = self.shared.lock();
        if state.buffered < self.shared.limit || state.closed || state.ended.is_some() {
            drop(state);
            callback();
        } else {
            state.writable_callbacks.push(Box::new(callback));
        }
    }

    /// Ends the body normally (once; later calls change nothing).
    pub fn finish(&self) {
        self.end(true);
    }

    /// Ends the body as failed: the client connection is cut.
    pub fn abort(&self) {
        self.end(false);
    }

    fn end(&self, complete: bool) {
        let mut state = self.shared.lock();
        if state.ended.is_some() {
            return;
        }
        state.ended = Some(complete);
        let receiver = state.receiver.take();
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        self.end(false);
    }
}

impl Drop for BodyReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.chunks.clear();
        state.buffered = 0;
        self.shared.wake_producers(state);
    }
}

impl Body for BodyReceiver {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        let shared = &self.shared;
        let mut state = shared.lock();
        if let Some(chunk) = state.chunks.pop_front() {
            let was_full = state.buffered >= shared.limit;
            state.buffered -= chunk.len();
            if was_full && state.buffered < shared.limit {
                shared.wake_producers(state);
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match state.ended {
            Some(true) => Poll::Ready(None),
            Some(false) => Poll::Ready(Some(Err(Aborted))),
            None => {
                state.receiver = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let state = self.shared.lock();
        state.chunks.is_empty() && state.ended == Some(true)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn chunks_flow_in_order_and_back_pressure_applies() {
        let (sender, mut receiver) = channel(4);
        assert!(sender.try_send(Bytes::from_static(b"abc")).is_ok());
        assert!(sender.try_send(Bytes::from_static(b"de")).is_ok());
        assert!(matches!(
            sender.try_send(Bytes::from_static(b"f")),
            Err(SendError::Full(_))
        ));
        let woken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&woken);
        sender.on_writable(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
        let first = receiver.frame().await.and_then(|f| f.ok());
        assert_eq!(
            first.and_then(|f| f.into_data().ok()).as_deref(),
            Some(&b"abc"[..])
        );
        assert!(woken.load(std::sync::atomic::Ordering::SeqCst));
        assert!(sender.try_send(Bytes::from_static(b"f")).is_ok());
        sender.finish();
        let rest = receiver.collect().await.map(|c| c.to_bytes());
        assert_eq!(rest.ok().as_deref(), Some(&b"def"[..]));
    }

    #[tokio::test]
    async fn a_dropped_sender_aborts_and_a_dropped_receiver_releases_writers() {
        let (sender, receiver) = channel(8);
        assert!(sender.try_send(Bytes::from_static(b"partial")).is_ok());
        drop(sender);
        assert!(receiver.collect().await.is_err(), "abort is an error");

        let (sender, receiver) = channel(1);
        assert!(sender.try_send(Bytes::from_static(b"xx")).is_ok());
        let writer = std::thread::spawn(move || sender.send_blocking(Bytes::from_static(b"y")));
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(receiver);
        assert!(matches!(writer.join().ok(), Some(Err(SendError::Closed))));
    }
}
