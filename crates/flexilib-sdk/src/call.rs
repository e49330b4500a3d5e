//! Answering a request (ABI 2): now, later from any thread, or with a body
//! streamed in chunks with back-pressure.

use std::ffi::{c_int, c_void};

use flexilib_abi as abi;

use crate::Response;

/// The request being handled, as the host's callbacks know it. Consumed by
/// the way the handler chooses to answer.
pub struct Call {
    pub(crate) id: u64,
    pub(crate) host: &'static abi::Host,
}

/// How a handler answers; made from a [`Response`] (answer now), by
/// [`Call::respond_later`] or by [`Call::stream`].
pub struct Answer(pub(crate) AnswerKind);

pub(crate) enum AnswerKind {
    Now(Response),
    Later,
    Stream(Response),
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Answer(AnswerKind::Now(response))
    }
}

impl Call {
    /// Answers later: return the [`Answer`] now and call
    /// [`Responder::complete`] (from any thread) when the response is
    /// ready. Meanwhile the request holds no handler slot. If the
    /// [`Responder`] is dropped unused, the request gets a 500.
    pub fn respond_later(self) -> (Responder, Answer) {
        (Responder { call: Some(self) }, Answer(AnswerKind::Later))
    }

    /// Answers now with `head` (its status and headers; its body is
    /// ignored) and a body written through the returned [`BodyWriter`],
    /// from any thread, after the handler has returned the [`Answer`].
    pub fn stream(self, head: Response) -> (BodyWriter, Answer) {
        (
            BodyWriter { call: Some(self) },
            Answer(AnswerKind::Stream(head)),
        )
    }
}

/// Completes a request answered later. `Send`: move it to any thread.
pub struct Responder {
    pub(crate) call: Option<Call>,
}

impl Responder {
    /// Sends the response (the host copies it).
    pub fn complete(mut self, response: Response) {
        if let Some(call) = self.call.take() {
            call.complete(&response, 0);
        }
    }

    /// Sends `head` now and streams the body through the returned writer.
    pub fn stream(mut self, head: Response) -> Option<BodyWriter> {
        let call = self.call.take()?;
        call.complete(&head, abi::RESPONSE_STREAM);
        Some(BodyWriter { call: Some(call) })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.complete(
                &Response::ok("responder dropped without an answer").status(500),
                0,
            );
        }
    }
}

impl Call {
    fn complete(&self, response: &Response, stream: usize) {
        let flags = stream
            | if response.is_as_given() {
                abi::RESPONSE_AS_GIVEN
            } else {
                0
            };
        with_raw_response(response, flags, |raw| {
            // SAFETY: the host's callback with this call's handle; `raw` and
            // what it points to live for the call (the host copies them).
            unsafe { (self.host.complete)(self.id, raw) };
        });
    }
}

/// Calls `f` with `response` in the ABI-2 layout, pointing into `response`.
fn with_raw_response(response: &Response, flags: usize, f: impl FnOnce(&abi::ResponseV2)) {
    let headers: Vec<abi::Header> = response
        .headers()
        .iter()
        .map(|(name, value)| abi::Header {
            name_ptr: name.as_ptr().cast_mut().cast(),
            name_len: name.len(),
            value_ptr: value.as_ptr().cast_mut().cast(),
            value_len: value.len(),
        })
        .collect();
    let body = if flags & abi::RESPONSE_STREAM != 0 {
        &[][..]
    } else {
        response.body_bytes()
    };
    let reason = response.reason_phrase().unwrap_or("");
    let raw = abi::ResponseV2 {
        base: abi::Response {
            ptr: body.as_ptr().cast_mut().cast(),
            len: body.len(),
            headers: headers.as_ptr().cast_mut(),
            headers_len: headers.len(),
            status: usize::from(response.status_code()),
            reason_ptr: reason.as_ptr().cast_mut().cast(),
            reason_len: reason.len(),
        },
        flags,
    };
    f(&raw);
}

/// Why a write was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// The host's buffer is full (non-blocking writes only): wait for
    /// [`BodyWriter::on_writable`].
    Full,
    /// The client went away: stop producing.
    Closed,
}

/// Writes a streamed body. `Send`: move it to the thread that produces the
/// body. Dropping it without [`finish`](Self::finish) aborts the body (the
/// client sees the connection cut, never a truncated body that looks whole).
pub struct BodyWriter {
    call: Option<Call>,
}

impl BodyWriter {
    /// Writes `data`, waiting while the host's buffer is full (so a fast
    /// producer runs at the client's pace).
    pub fn write(&self, data: &[u8]) -> Result<(), WriteError> {
        self.write_with(data, 0)
    }

    /// Writes `data` if the host has room, without waiting.
    pub fn try_write(&self, data: &[u8]) -> Result<(), WriteError> {
        self.write_with(data, abi::WRITE_NONBLOCK)
    }

    fn write_with(&self, data: &[u8], flags: c_int) -> Result<(), WriteError> {
        let Some(call) = &self.call else {
            return Err(WriteError::Closed);
        };
        // SAFETY: the host's callback with this call's handle; `data` is
        // valid for the call (the host copies it).
        let status =
            unsafe { (call.host.stream_write)(call.id, data.as_ptr().cast(), data.len(), flags) };
        match status {
            abi::STATUS_OK => Ok(()),
            abi::STATUS_FULL => Err(WriteError::Full),
            _ => Err(WriteError::Closed),
        }
    }

    /// Runs `callback` once, on any thread, when the host has room for more
    /// (at once if it has) or the body closed.
    pub fn on_writable(&self, callback: impl FnOnce() + Send + 'static) {
        let Some(call) = &self.call else {
            callback();
            return;
        };
        let data = Box::into_raw(Box::new(Box::new(callback) as Box<dyn FnOnce() + Send>));
        // SAFETY: `run_callback` takes back the box made just above, once:
        // the host calls it exactly once.
        let status = unsafe { (call.host.stream_on_writable)(call.id, run_callback, data.cast()) };
        if status != abi::STATUS_OK {
            // SAFETY: the host refused it, so it will not call back: the box
            // is still ours.
            let callback = unsafe { Box::from_raw(data) };
            callback();
        }
    }

    /// The call, while the body is open.
    pub(crate) fn call(&self) -> Option<&Call> {
        self.call.as_ref()
    }

    /// Ends the body as complete.
    pub fn finish(mut self) {
        self.end(true);
    }

    fn end(&mut self, ok: bool) {
        if let Some(call) = self.call.take() {
            // SAFETY: the host's callback with this call's handle, once.
            unsafe { (call.host.stream_end)(call.id, c_int::from(ok)) };
        }
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        self.end(false);
    }
}

/// The C callback that runs a boxed Rust closure.
unsafe extern "C" fn run_callback(data: *mut c_void) {
    // SAFETY: `data` is the box made by `on_writable`, handed back once.
    let callback = unsafe { Box::from_raw(data.cast::<Box<dyn FnOnce() + Send>>()) };
    callback();
}
