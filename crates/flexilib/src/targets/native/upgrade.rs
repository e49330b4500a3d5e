//! A library's upgraded connection (ABI 3): after a library answered
//! `101 Switching Protocols` to a request that asked for an upgrade, the
//! connection carries raw bytes both ways. What the library writes
//! (`stream_write`) goes out as is; what the client sends waits in an
//! [`Inbound`] buffer that the library drains (`stream_read`) when told
//! (`stream_on_readable`). The socket is read only while the buffer has
//! room, so a library that stops reading slows the client down instead of
//! filling memory.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt as _;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Notify;

use crate::body_channel::BodyReceiver;
use crate::http1::OnUpgrade;

/// Bytes from the client buffered for the library before the socket is
/// left unread.
pub const INBOUND_BUFFER_BYTES: usize = 256 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A callback run once when there is something to read (or the end).
pub type Readable = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    chunks: std::collections::VecDeque<Bytes>,
    buffered: usize,
    /// The client's side ended (or the connection failed, or the call ended).
    closed: bool,
    readable: Vec<Readable>,
}

/// What the client sent, waiting for the library.
#[derive(Default)]
pub struct Inbound {
    state: Mutex<State>,
    /// The buffer has room again (the reader waits for it).
    room: Notify,
}

/// What [`Inbound::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// This many bytes were copied (0: nothing waiting now).
    Bytes(usize),
    /// The client's side closed and everything was read.
    Closed,
}

impl Inbound {
    /// Copies waiting bytes into `buffer`.
    pub fn read(&self, buffer: &mut [u8]) -> Read {
        let mut state = self.state.lock();
        let mut copied = 0;
        while copied < buffer.len() {
            let Some(chunk) = state.chunks.front_mut() else {
                break;
            };
            let n = chunk.len().min(buffer.len() - copied);
            buffer[copied..copied + n].copy_from_slice(&chunk[..n]);
            chunk.advance(n);
            copied += n;
            if chunk.is_empty() {
                state.chunks.pop_front();
            }
        }
        state.buffered -= copied;
        if copied == 0 && state.closed && state.chunks.is_empty() {
            return Read::Closed;
        }
        if copied > 0 {
            drop(state);
            self.room.notify_one();
        }
        Read::Bytes(copied)
    }

    /// Runs `callback` once when there is something to read or the end
    /// came: at once if so already.
    pub fn on_readable(&self, callback: Readable) {
        let mut state = self.state.lock();
        if state.buffered > 0 || state.closed {
            drop(state);
            callback();
        } else {
            state.readable.push(callback);
        }
    }

    /// Adds bytes from the client (or, with `None`, marks its end) and
    /// runs the waiting callbacks, outside the lock.
    fn push(&self, chunk: Option<Bytes>) {
        let mut state = self.state.lock();
        match chunk {
            Some(chunk) => {
                state.buffered += chunk.len();
                state.chunks.push_back(chunk);
            }
            None => state.closed = true,
        }
        let callbacks = std::mem::take(&mut state.readable);
        drop(state);
        callbacks.into_iter().for_each(|callback| callback());
    }

    /// The end: nothing more will come (the call or the connection ended).
    pub fn close(&self) {
        self.push(None);
        self.room.notify_one();
    }

    fn has_room(&self) -> bool {
        let state = self.state.lock();
        state.buffered < INBOUND_BUFFER_BYTES && !state.closed
    }
}

/// Serves an upgraded connection once the `101` has gone out: the
/// library's stream to the client, the client's bytes into `inbound`.
/// Ends when the library ends its stream (its side is then shut down, or
/// cut if it aborted); the client closing first only ends the inbound side.
pub async fn serve(on_upgrade: OnUpgrade, mut outbound: BodyReceiver, inbound: Arc<Inbound>) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            tracing::debug!(%error, "library upgrade: the connection was not handed over");
            inbound.close();
            return;
        }
    };
    let (mut reader, mut writer) = tokio::io::split(upgraded);
    let reading = async {
        let mut buffer = BytesMut::new();
        loop {
            while !inbound.has_room() {
                if inbound.state.lock().closed {
                    return;
                }
                inbound.room.notified().await;
            }
            buffer.reserve(READ_CHUNK);
            match reader.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => inbound.push(Some(buffer.split().freeze())),
            }
        }
        inbound.close();
    };
    let writing = async {
        loop {
            match outbound.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if writer.write_all(&data).await.is_err() {
                            return false;
                        }
                    }
                }
                // The library ended its stream.
                None => return writer.shutdown().await.is_ok(),
                // It aborted: the connection is cut.
                Some(Err(_)) => return false,
            }
        }
    };
    tokio::pin!(reading);
    tokio::pin!(writing);
    tokio::select! {
        _ = &mut writing => {}
        () = &mut reading => {
            // The client closed its side; the library may still write.
            let _ = (&mut writing).await;
        }
    }
    inbound.close();
}
