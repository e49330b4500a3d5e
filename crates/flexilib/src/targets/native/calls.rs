//! Calls that outlive `handle_request` (ABI 2): requests answered later
//! through `complete`, and bodies streamed through `stream_write`.
//!
//! Every call to an ABI-2 library is registered here under a fresh handle
//! (a number, never a pointer, so a late or repeated callback from a
//! library finds nothing instead of freed memory) before the library sees
//! it. The entry holds what the library may still use: the completion
//! channel the waiting request listens on, the body channel of a streamed
//! response, the request's arena while the call is pending, and the library
//! generation and instance (so neither is unloaded under a live call). The
//! entry goes when the response is complete: at `complete` for a plain
//! body, at `stream_end` for a streamed one.
//!
//! The callbacks in [`HOST`] are the C entry points; each may be called from
//! any thread.

use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use flexilib_abi as abi;
use tokio::sync::oneshot;

use super::ffi::{copy_response, CallError, LibraryResponse};
use super::upgrade::{Inbound, Read};
use crate::arena::RequestArena;
use crate::body_channel::{self, BodyReceiver, BodySender, SendError};

/// Bytes a streamed body may buffer before its producer is told to wait.
pub const STREAM_BUFFER_BYTES: usize = 256 * 1024;

/// The host callbacks handed to ABI-2 libraries in every request.
pub static HOST: abi::Host = abi::Host {
    abi_version: abi::ABI_VERSION,
    complete: host_complete,
    stream_write: host_stream_write,
    stream_on_writable: host_stream_on_writable,
    stream_end: host_stream_end,
    stream_read: host_stream_read,
    stream_on_readable: host_stream_on_readable,
};

/// What a completed call delivers to the waiting request.
pub type Completion = Result<LibraryResponse, CallError>;

struct LiveCall {
    /// Taken by `complete`; `None` once the response was handed over.
    completion: Option<oneshot::Sender<Completion>>,
    /// `complete` is copying the response out (of the arena, perhaps).
    completing: bool,
    /// `stream_end` came before the response was handed over (a fast
    /// producer thread): the entry goes at the hand-over.
    ended: bool,
    stream: Arc<BodySender>,
    /// The request's arena, held while the call is pending.
    arena: Option<Box<RequestArena>>,
    /// What the client sent after a `101` (made when first asked for).
    inbound: Option<Arc<Inbound>>,
    /// The library generation and instance the call runs on.
    _keep: Box<dyn Send + Sync>,
}

static CALLS: LazyLock<Mutex<HashMap<u64, LiveCall>>> = LazyLock::new(Mutex::default);
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

fn calls() -> MutexGuard<'static, HashMap<u64, LiveCall>> {
    CALLS.lock()
}

/// A call registered before the library sees it.
pub struct Registered {
    /// The handle passed to the library.
    pub id: u64,
    /// Delivers the response of a pending call.
    pub completion: oneshot::Receiver<Completion>,
    /// The body of a streamed response.
    pub body: BodyReceiver,
    /// Closes the inbound side when the request is done with the call.
    pub closer: InboundCloser,
}

/// Registers a call; `keep` is held until the call is over.
pub fn register(keep: Box<dyn Send + Sync>) -> Registered {
    let id = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
    let (sender, completion) = oneshot::channel();
    let (stream, body) = body_channel::channel(STREAM_BUFFER_BYTES);
    calls().insert(
        id,
        LiveCall {
            completion: Some(sender),
            completing: false,
            ended: false,
            stream: Arc::new(stream),
            arena: None,
            inbound: None,
            _keep: keep,
        },
    );
    Registered {
        id,
        completion,
        body,
        closer: InboundCloser(id),
    }
}

/// Ends the inbound side of a call (an upgraded connection's reads) when
/// dropped: the request went (answered, or its client left), so a library
/// waiting for the client's bytes is told there will be none.
pub struct InboundCloser(u64);

impl Drop for InboundCloser {
    fn drop(&mut self) {
        let inbound = calls().get(&self.0).and_then(|call| call.inbound.clone());
        if let Some(inbound) = inbound {
            inbound.close();
        }
    }
}

/// The inbound side of live call `id`, made if it has none yet.
pub fn inbound(id: u64) -> Option<Arc<Inbound>> {
    calls()
        .get_mut(&id)
        .map(|call| Arc::clone(call.inbound.get_or_insert_with(Arc::default)))
}

/// `handle_request` answered with `response` (or failed): the call is over
/// unless its body streams.
pub fn returned(id: u64, streamed: bool) {
    let mut calls = calls();
    match calls.get_mut(&id) {
        Some(call) if streamed && !call.ended => call.completion = None,
        _ => {
            calls.remove(&id);
        }
    }
}

/// `handle_request` answered "pending". Returns the arena back if the call
/// was already completed (from another thread) meanwhile; otherwise the
/// call keeps it until its completion has copied the response out.
pub fn pending(id: u64, arena: Box<RequestArena>) -> Option<Box<RequestArena>> {
    let mut calls = calls();
    match calls.get_mut(&id) {
        Some(call) if call.completion.is_some() || call.completing => {
            call.arena = Some(arena);
            None
        }
        _ => Some(arena),
    }
}

/// The body channel of a live call. (A call whose waiting request gave up,
/// by timeout or because the client left, stays registered until the
/// library completes it: the library may still be reading the request.)
fn stream_of(id: u64) -> Option<Arc<BodySender>> {
    calls().get(&id).map(|call| Arc::clone(&call.stream))
}

/// `complete(call, response)`.
unsafe extern "C" fn host_complete(call: u64, response: *const abi::ResponseV2) -> c_int {
    let sender = calls().get_mut(&call).and_then(|live| {
        let sender = live.completion.take()?;
        live.completing = true;
        Some(sender)
    });
    let Some(sender) = sender else {
        tracing::warn!(call, "complete: unknown or already completed call");
        return abi::STATUS_INVALID;
    };
    let copied = if response.is_null() {
        Err(CallError::NullResponse)
    } else {
        // SAFETY: the ABI requires `response` to be a valid
        // `flexilib_response_v2` for the duration of this call.
        unsafe { copy_response(response.cast::<abi::Response>(), true) }
    };
    let streamed = copied.as_ref().is_ok_and(LibraryResponse::streamed);
    // The request is no longer the library's to read: its arena goes (after
    // the lock is released).
    let finished = {
        let mut calls = calls();
        if streamed {
            calls.get_mut(&call).map(|live| {
                live.completing = false;
                (live.arena.take(), None)
            })
        } else {
            calls
                .remove(&call)
                .map(|mut live| (live.arena.take(), Some(live)))
        }
    };
    drop(finished);
    // The request may have gone (client closed, timeout): nothing to do then.
    let _ = sender.send(copied);
    abi::STATUS_OK
}

/// `stream_write(call, data, len, flags)`.
unsafe extern "C" fn host_stream_write(
    call: u64,
    data: *const c_char,
    len: usize,
    flags: c_int,
) -> c_int {
    let Some(stream) = stream_of(call) else {
        return abi::STATUS_INVALID;
    };
    if len > 0 && (data.is_null() || len > isize::MAX as usize) {
        return abi::STATUS_INVALID;
    }
    let chunk = if len == 0 {
        Bytes::new()
    } else {
        // SAFETY: non-NULL (checked) and, per the ABI, `len` readable bytes
        // for the duration of the call; they are copied here.
        Bytes::copy_from_slice(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
    };
    let result = if flags & abi::WRITE_NONBLOCK != 0 {
        stream.try_send(chunk)
    } else {
        stream.send_blocking(chunk)
    };
    match result {
        Ok(()) => abi::STATUS_OK,
        Err(SendError::Full(_)) => abi::STATUS_FULL,
        Err(SendError::Closed) => abi::STATUS_CLOSED,
    }
}

/// A library's callback data pointer, moved to the thread that calls back.
struct CallbackData(*mut c_void);

// SAFETY: the ABI tells libraries that `stream_on_writable` callbacks run on
// any thread; the pointer is only passed back to the library's callback.
unsafe impl Send for CallbackData {}

/// `stream_on_writable(call, callback, data)`.
unsafe extern "C" fn host_stream_on_writable(
    call: u64,
    callback: unsafe extern "C" fn(data: *mut c_void),
    data: *mut c_void,
) -> c_int {
    let Some(stream) = stream_of(call) else {
        return abi::STATUS_INVALID;
    };
    let data = CallbackData(data);
    stream.on_writable(move || {
        let data = data;
        // SAFETY: the library gave this callback with this data pointer and
        // accepts calls to it from any thread (ABI 2).
        unsafe { callback(data.0) };
    });
    abi::STATUS_OK
}

/// `stream_end(call, ok)`.
unsafe extern "C" fn host_stream_end(call: u64, ok: c_int) -> c_int {
    let (stream, ended_inbound) = {
        let mut calls = calls();
        match calls.get_mut(&call) {
            Some(live) if live.ended => return abi::STATUS_INVALID,
            // Not handed over yet (a producer thread faster than the
            // return of `handle_request`): the hand-over removes the entry.
            Some(live) if live.completion.is_some() || live.completing => {
                live.ended = true;
                (Arc::clone(&live.stream), live.inbound.clone())
            }
            Some(_) => match calls.remove(&call) {
                Some(live) => (Arc::clone(&live.stream), live.inbound.clone()),
                None => return abi::STATUS_INVALID,
            },
            None => return abi::STATUS_INVALID,
        }
    };
    if ok != 0 {
        stream.finish();
    } else {
        stream.abort();
    }
    if let Some(inbound) = ended_inbound {
        inbound.close();
    }
    abi::STATUS_OK
}

/// `stream_read(call, buffer, capacity, len)` (ABI 3).
unsafe extern "C" fn host_stream_read(
    call: u64,
    buffer: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> c_int {
    if len.is_null() || (capacity > 0 && buffer.is_null()) || capacity > isize::MAX as usize {
        return abi::STATUS_INVALID;
    }
    let Some(inbound) = inbound(call) else {
        return abi::STATUS_INVALID;
    };
    let target: &mut [u8] = if capacity == 0 {
        &mut []
    } else {
        // SAFETY: non-NULL (checked) and, per the ABI, `capacity` writable
        // bytes for the duration of the call.
        unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), capacity) }
    };
    let (status, n) = match inbound.read(target) {
        Read::Bytes(n) => (abi::STATUS_OK, n),
        Read::Closed => (abi::STATUS_CLOSED, 0),
    };
    // SAFETY: non-NULL (checked); the ABI makes `len` writable.
    unsafe { len.write(n) };
    status
}

/// `stream_on_readable(call, callback, data)` (ABI 3).
unsafe extern "C" fn host_stream_on_readable(
    call: u64,
    callback: unsafe extern "C" fn(data: *mut c_void),
    data: *mut c_void,
) -> c_int {
    let Some(inbound) = inbound(call) else {
        return abi::STATUS_INVALID;
    };
    let data = CallbackData(data);
    inbound.on_readable(Box::new(move || {
        let data = data;
        // SAFETY: the library gave this callback with this data pointer and
        // accepts calls to it from any thread (ABI 3).
        unsafe { callback(data.0) };
    }));
    abi::STATUS_OK
}
