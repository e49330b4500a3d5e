//! WebSockets: a worker answers an upgrade request with
//! `new Response(null, { status: 101, webSocket: client })`, and the
//! server half of its `WebSocketPair` talks to the real client.
//!
//! The handshake is answered here (`Sec-WebSocket-Accept`), then the
//! connection is taken over through the host's upgrade callbacks (ABI 3)
//! and spoken with `tungstenite` on the JS thread: the client's bytes are
//! read when the host says they are there, frames become `message` and
//! `close` events, pings are answered, and `send()`/`close()` write
//! frames. A socket lives as a request of its own on the JS thread (its
//! answer is the connection), so timers and host work its event handlers
//! start belong to it and end with it; each event runs under a fresh CPU
//! budget, as each message does on Cloudflare.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use base64::Engine as _;
use flexilib_sdk::Response;
use rquickjs::{Ctx, Exception, Function, Object, TypedArray, Value};
use sha1::{Digest as _, Sha1};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

use crate::natives::bytes_of;
use crate::shared::{Msg, Wake};
use crate::socket::Socket;
use crate::state::{Answer, Call, State};

/// RFC 6455's key suffix.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What a socket's JavaScript is told.
pub(crate) enum Event {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The client closed (code 1005 when it gave none), or the connection
    /// ended without a close (1006, not clean).
    Close(u16, String, bool),
    /// A protocol error (then `Close` with 1006).
    Error(String),
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
fn accept_key(key: &str) -> String {
    let mut hash = Sha1::new();
    hash.update(key.trim().as_bytes());
    hash.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hash.finalize())
}

/// The callback that wakes socket `socket` on its JS thread.
fn waker(state: &State, socket: u64) -> impl Fn(Wake) -> Box<dyn FnOnce() + Send> {
    let tx = state.tx.clone();
    let generation = state.generation;
    move |wake| {
        let tx = tx.clone();
        Box::new(move || {
            let _ = tx.send(Msg::Socket(generation, socket, wake));
        })
    }
}

/// The next event of socket `socket` (a request of its own, see the
/// module), reading and answering pings as needed, or `None` when there
/// is nothing more now (a wake-up is then asked for) or the socket is gone.
/// The socket ends (its request with it) after its close.
pub(crate) fn next_event(state: &Rc<RefCell<State>>, socket: u64, wake: Wake) -> Option<Event> {
    let mut guard = state.borrow_mut();
    let waker = waker(&guard, socket);
    let Some(Call {
        answer: Some(Answer::Socket(conn)),
        ..
    }) = guard.calls.get_mut(&socket)
    else {
        return None;
    };
    match wake {
        Wake::Readable => conn.read_armed = false,
        Wake::Writable => {
            conn.write_armed = false;
            conn.flush(&waker);
        }
        Wake::More => {}
    }
    let event = loop {
        match conn.ws.read() {
            Ok(Message::Text(text)) => break Some(Event::Text(text.as_str().to_string())),
            Ok(Message::Binary(bytes)) => break Some(Event::Binary(bytes.to_vec())),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Ok(Message::Close(frame)) => {
                conn.close_seen = true;
                let (code, reason) = frame.map_or((1005, String::new()), |frame| {
                    (u16::from(frame.code), frame.reason.as_str().to_string())
                });
                break Some(Event::Close(code, reason, true));
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !conn.read_armed {
                    if let Some(upgraded) = conn.upgraded() {
                        upgraded.on_readable(waker(Wake::Readable));
                        conn.read_armed = true;
                    }
                }
                conn.flush(&waker);
                return None;
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                break ended(conn, None);
            }
            Err(error) => {
                // A protocol violation (bad frame, oversized message, bad
                // UTF-8): close with the code RFC 6455 gives it.
                let code = match &error {
                    tungstenite::Error::Capacity(_) => CloseCode::Size,
                    tungstenite::Error::Utf8(_) => CloseCode::Invalid,
                    _ => CloseCode::Protocol,
                };
                let _ = conn.ws.close(Some(CloseFrame {
                    code,
                    reason: "".into(),
                }));
                let _ = conn.ws.flush();
                break ended(conn, Some(error.to_string()));
            }
        }
    };
    conn.flush(&waker);
    if matches!(event, Some(Event::Close(..) | Event::Error(_))) && !conn.ws.can_read() {
        conn.finish();
    }
    let done = conn.upgraded().is_none();
    if done {
        if let Some(Call { answer, .. }) = guard.calls.get_mut(&socket) {
            *answer = None;
        }
        if event.is_none() {
            guard.finish_if_done(socket);
        }
    }
    event
}

/// The socket's connection ended: its close event, unless it had one.
fn ended(conn: &mut Socket, error: Option<String>) -> Option<Event> {
    conn.finish();
    match error {
        Some(message) if !conn.close_seen => {
            conn.close_seen = true;
            Some(Event::Error(message))
        }
        _ if !conn.close_seen => {
            conn.close_seen = true;
            Some(Event::Close(1006, String::new(), false))
        }
        _ => None,
    }
}

/// Ends socket `socket`'s request once its last event ran.
pub(crate) fn settle(state: &Rc<RefCell<State>>, socket: u64) {
    let mut state = state.borrow_mut();
    let open = state.calls.get(&socket).is_some_and(
        |call| matches!(&call.answer, Some(Answer::Socket(conn)) if conn.upgraded().is_some()),
    );
    if !open {
        if let Some(call) = state.calls.get_mut(&socket) {
            call.answer = None;
        }
        state.finish_if_done(socket);
    } else if let Some(call) = state.calls.get_mut(&socket) {
        // Each event gets a fresh CPU budget.
        call.cpu = Duration::ZERO;
    }
}

fn type_error(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    Exception::throw_type(ctx, message)
}

/// The natives the prelude's `WebSocket` is built on.
pub(crate) fn natives<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<State>>,
    n: &Object<'js>,
) -> rquickjs::Result<()> {
    // respondWebSocket(call, flat headers, key) → socket id: answers the
    // request with 101 and makes the socket a request of its own.
    let s = state.clone();
    n.set(
        "respondWebSocket",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, call: f64, flat: Vec<String>, key: String| {
                let call = call as u64;
                let taken = s.borrow_mut().take_answer(call);
                let Some(Answer::Pending(responder)) = taken else {
                    s.borrow_mut().finish_if_done(call);
                    return Err(type_error(&ctx, "the request was already answered"));
                };
                let mut head = Response::new().status(101).as_given();
                for pair in flat.chunks_exact(2) {
                    let name = pair[0].to_ascii_lowercase();
                    if matches!(
                        name.as_str(),
                        "upgrade" | "connection" | "sec-websocket-accept" | "content-length"
                    ) {
                        continue;
                    }
                    head.add_header(pair[0].clone(), pair[1].clone());
                }
                head.add_header("upgrade", "websocket");
                head.add_header("sec-websocket-accept", accept_key(&key));
                let upgraded = responder.upgrade(head);
                let mut state = s.borrow_mut();
                state.finish_if_done(call);
                let Some(upgraded) = upgraded else {
                    return Err(type_error(&ctx, "this server cannot take connections over"));
                };
                state.next_call += 1;
                let socket = state.next_call;
                let mut conn = Socket::new(upgraded, state.shared.counts.sockets.hold());
                let wake = waker(&state, socket);
                if let Some(upgraded) = conn.upgraded() {
                    upgraded.on_readable(wake(Wake::Readable));
                    conn.read_armed = true;
                }
                let counted = state.shared.counts.calls.hold();
                state.calls.insert(
                    socket,
                    Call {
                        answer: Some(Answer::Socket(Box::new(conn))),
                        cpu: Duration::ZERO,
                        waits: 0,
                        answered_at: None,
                        _counted: counted,
                    },
                );
                Ok(socket as f64)
            },
        )?
        .with_name("respondWebSocket")?,
    )?;
    // wsSend(socket, data): a string is a text message, bytes a binary one.
    // 0 sent (or queued), 1 closed, 2 too much unsent.
    let s = state.clone();
    n.set(
        "wsSend",
        Function::new(ctx.clone(), move |socket: f64, data: Value<'js>| {
            let message = match data.as_string() {
                Some(text) => Message::text(text.to_string()?),
                None => Message::binary(bytes_of(&TypedArray::<u8>::from_value(data)?)),
            };
            let socket = socket as u64;
            let mut guard = s.borrow_mut();
            let waker = waker(&guard, socket);
            let Some(Call {
                answer: Some(Answer::Socket(conn)),
                ..
            }) = guard.calls.get_mut(&socket)
            else {
                return Ok::<_, rquickjs::Error>(1);
            };
            let status = match conn.ws.write(message) {
                Ok(()) => 0,
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(tungstenite::Error::WriteBufferFull(_)) => 2,
                Err(_) => 1,
            };
            conn.flush(&waker);
            Ok(status)
        })?
        .with_name("wsSend")?,
    )?;
    // wsClose(socket, code (0: none), reason).
    let s = state.clone();
    n.set(
        "wsClose",
        Function::new(
            ctx.clone(),
            move |socket: f64, code: u16, reason: String| {
                let socket = socket as u64;
                let mut guard = s.borrow_mut();
                let waker = waker(&guard, socket);
                if let Some(Call {
                    answer: Some(Answer::Socket(conn)),
                    ..
                }) = guard.calls.get_mut(&socket)
                {
                    let frame = (code != 0).then(|| CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    });
                    let _ = conn.ws.close(frame);
                    conn.flush(&waker);
                }
            },
        )?
        .with_name("wsClose")?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::accept_key;

    #[test]
    fn the_accept_key_of_rfc_6455() {
        // RFC 6455 section 1.3's example.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
