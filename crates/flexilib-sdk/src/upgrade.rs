//! A connection taken over with `101 Switching Protocols` (ABI 3): the
//! library reads what the client sends and writes raw bytes back, e.g. to
//! speak WebSocket.

use std::ffi::c_void;

use flexilib_abi as abi;

use crate::call::{Answer, BodyWriter, Call, Responder, WriteError};
use crate::Response;

impl Call {
    /// Answers a request that asked for an upgrade with `head` (status
    /// 101; its body is ignored; the host adds `connection: upgrade`) and
    /// takes the connection over: read and write it through the returned
    /// [`Upgraded`] once the handler has returned the [`Answer`]. `Err`
    /// gives the call back when the host is older than ABI 3.
    pub fn upgrade(self, head: Response) -> Result<(Upgraded, Answer), Call> {
        if self.host.abi_version < 3 {
            return Err(self);
        }
        let (writer, answer) = self.stream(head);
        Ok((Upgraded { writer }, answer))
    }
}

impl Responder {
    /// Answers a request that asked for an upgrade with `head` (status
    /// 101; the host adds `connection: upgrade`) and takes the connection
    /// over. `None` (and a 501 answer) when the host is older than ABI 3.
    pub fn upgrade(self, head: Response) -> Option<Upgraded> {
        let host_version = self.call.as_ref()?.host.abi_version;
        if host_version < 3 {
            self.complete(
                Response::ok("this server cannot hand the connection over (ABI < 3)").status(501),
            );
            return None;
        }
        self.stream(head).map(|writer| Upgraded { writer })
    }
}

/// Why nothing was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The client closed its side and everything it sent was read (or the
    /// call ended).
    Closed,
}

/// An upgraded connection, from [`crate::Responder::upgrade`] or
/// [`crate::Call::upgrade`]. `Send`: move it to the thread that serves
/// it. Dropping it without [`finish`](Self::finish) cuts the connection.
pub struct Upgraded {
    pub(crate) writer: BodyWriter,
}

impl Upgraded {
    /// Copies what the client sent into `buffer`, without waiting: `Ok(0)`
    /// when nothing is waiting (then wait for
    /// [`on_readable`](Self::on_readable)).
    pub fn read(&self, buffer: &mut [u8]) -> Result<usize, ReadError> {
        let Some(call) = self.writer.call() else {
            return Err(ReadError::Closed);
        };
        let mut len = 0usize;
        // SAFETY: the host's callback (ABI ≥ 3, checked when this was made)
        // with this call's handle; `buffer` is writable for its length and
        // `len` for one `usize` during the call.
        let status = unsafe {
            (call.host.stream_read)(call.id, buffer.as_mut_ptr().cast(), buffer.len(), &mut len)
        };
        match status {
            abi::STATUS_OK => Ok(len.min(buffer.len())),
            _ => Err(ReadError::Closed),
        }
    }

    /// Runs `callback` once, on any thread, when the client has sent
    /// something (at once if something is waiting), or closed, or the
    /// connection ended.
    pub fn on_readable(&self, callback: impl FnOnce() + Send + 'static) {
        let Some(call) = self.writer.call() else {
            callback();
            return;
        };
        let data = Box::into_raw(Box::new(Box::new(callback) as Box<dyn FnOnce() + Send>));
        // SAFETY: `run_callback` takes back the box made just above, once:
        // the host calls it exactly once.
        let status = unsafe { (call.host.stream_on_readable)(call.id, run_callback, data.cast()) };
        if status != abi::STATUS_OK {
            // SAFETY: the host refused it, so it will not call back: the box
            // is still ours.
            let callback = unsafe { Box::from_raw(data) };
            callback();
        }
    }

    /// Sends `data` to the client if the host has room, without waiting.
    pub fn try_write(&self, data: &[u8]) -> Result<(), WriteError> {
        self.writer.try_write(data)
    }

    /// Sends `data`, waiting while the host's buffer is full.
    pub fn write(&self, data: &[u8]) -> Result<(), WriteError> {
        self.writer.write(data)
    }

    /// Runs `callback` once, on any thread, when there is room to write
    /// (at once if there is) or the connection closed.
    pub fn on_writable(&self, callback: impl FnOnce() + Send + 'static) {
        self.writer.on_writable(callback);
    }

    /// Closes the connection in good order (after what was written).
    pub fn finish(self) {
        self.writer.finish();
    }
}

/// The C callback that runs a boxed Rust closure.
unsafe extern "C" fn run_callback(data: *mut c_void) {
    // SAFETY: `data` is the box made by `on_readable`, handed back once.
    let callback = unsafe { Box::from_raw(data.cast::<Box<dyn FnOnce() + Send>>()) };
    callback();
}
