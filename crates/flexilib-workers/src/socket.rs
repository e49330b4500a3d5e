//! An open WebSocket's connection: the host's upgraded connection (ABI 3)
//! as `tungstenite` reads and writes it, without ever blocking, and which
//! wake-ups it has asked the host for. What its frames mean to the
//! worker's JavaScript is in [`crate::websocket`].

use std::io::{Read, Write};

use flexilib_sdk::{ReadError, Upgraded, WriteError};
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::shared::Wake;

/// The largest message a client may send, as on Cloudflare (32 MiB).
const MAX_MESSAGE: usize = 32 << 20;
/// Bytes of frames waiting for the client before `send()` fails.
const MAX_UNSENT: usize = 64 << 20;

/// The host connection as `tungstenite` reads and writes it: never
/// blocking (`WouldBlock` when nothing is there or no room is left).
pub(crate) struct Connection(Option<Upgraded>);

impl Read for Connection {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let Some(upgraded) = &self.0 else {
            return Ok(0);
        };
        match upgraded.read(buffer) {
            Ok(0) if !buffer.is_empty() => Err(std::io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(ReadError::Closed) => Ok(0),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let Some(upgraded) = &self.0 else {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        };
        match upgraded.try_write(data) {
            Ok(()) => Ok(data.len()),
            Err(WriteError::Full) => Err(std::io::ErrorKind::WouldBlock.into()),
            Err(WriteError::Closed) => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One open WebSocket.
pub(crate) struct Socket {
    pub(crate) ws: tungstenite::WebSocket<Connection>,
    /// A wake-up for reading is asked for (so it is asked for once).
    pub(crate) read_armed: bool,
    pub(crate) write_armed: bool,
    /// The `close` event was dispatched.
    pub(crate) close_seen: bool,
    /// Its unit of the open WebSockets (`Counts::sockets`).
    _open: crate::gauges::Held,
}

impl Socket {
    /// A socket over `upgraded`, counted in `open` while it lives.
    pub(crate) fn new(upgraded: Upgraded, open: crate::gauges::Held) -> Self {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE))
            .max_write_buffer_size(MAX_UNSENT);
        Socket {
            ws: tungstenite::WebSocket::from_raw_socket(
                Connection(Some(upgraded)),
                Role::Server,
                Some(config),
            ),
            read_armed: false,
            write_armed: false,
            close_seen: false,
            _open: open,
        }
    }

    pub(crate) fn upgraded(&self) -> Option<&Upgraded> {
        self.ws.get_ref().0.as_ref()
    }

    /// Closes the connection in good order (after what was written).
    pub(crate) fn finish(&mut self) {
        if let Some(upgraded) = self.ws.get_mut().0.take() {
            upgraded.finish();
        }
    }

    /// Writes what `tungstenite` holds; asks to be woken when the host has
    /// room if some is left.
    pub(crate) fn flush(&mut self, wake: &dyn Fn(Wake) -> Box<dyn FnOnce() + Send>) {
        let blocked = matches!(
            self.ws.flush(),
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        if blocked && !self.write_armed {
            if let Some(upgraded) = self.upgraded() {
                upgraded.on_writable(wake(Wake::Writable));
                self.write_armed = true;
            }
        }
    }
}
