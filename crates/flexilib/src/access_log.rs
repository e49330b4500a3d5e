//! The access log: one line per request on stdout, in the original's format:
//!
//! ```text
//! 127.0.0.1:59940 - - "GET / HTTP/1.1" 200 ttfb 2000.420ms 11 ttlb 2000.568ms (pre-alloc: 1569, alloc: 4350)
//! ```
//!
//! Lines are appended to an in-memory buffer; a background thread writes it
//! out at least once a second, a full buffer (64 KiB) is written at once by
//! the request that filled it, and [`AccessLog::flush`] runs on shutdown, so
//! logging costs no syscall per request and loses no line on a clean exit.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::{Method, Uri, Version};

use crate::arena::ArenaUsage;

/// Buffer size that triggers an immediate write.
const FLUSH_AT_BYTES: usize = 64 * 1024;

/// Everything one log line says.
#[derive(Debug)]
pub struct Entry<'a> {
    /// Client address.
    pub peer: SocketAddr,
    /// Request method.
    pub method: &'a Method,
    /// Request target as received.
    pub target: &'a Uri,
    /// HTTP version.
    pub version: Version,
    /// Response status.
    pub status: u16,
    /// Time from the request head to the response being ready.
    pub ttfb: Duration,
    /// Body bytes sent.
    pub bytes: u64,
    /// Time from the request head to the last body byte handed to the connection.
    pub ttlb: Duration,
    /// Arena use of the request.
    pub usage: ArenaUsage,
}

/// Buffered writer of access-log lines to stdout.
#[derive(Debug, Default)]
pub struct AccessLog {
    buffer: Mutex<Vec<u8>>,
    /// Held while writing to stdout so that chunks keep their order.
    output: Mutex<()>,
}

impl AccessLog {
    /// A log with a background thread that flushes it every `every`.
    pub fn start(every: Duration) -> std::io::Result<Arc<Self>> {
        let log = Arc::new(Self::default());
        let flusher = Arc::clone(&log);
        std::thread::Builder::new()
            .name("flexilib-log".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                flusher.flush();
            })?;
        Ok(log)
    }

    /// Appends one line.
    pub fn write(&self, entry: &Entry<'_>) {
        let mut buffer = lock(&self.buffer);
        // Writing into a Vec cannot fail.
        let _ = writeln!(
            buffer,
            "{} - - \"{} {} {:?}\" {} ttfb {:.3}ms {} ttlb {:.3}ms (pre-alloc: {}, alloc: {})",
            entry.peer,
            entry.method,
            entry.target,
            entry.version,
            entry.status,
            entry.ttfb.as_secs_f64() * 1e3,
            entry.bytes,
            entry.ttlb.as_secs_f64() * 1e3,
            entry.usage.preallocated,
            entry.usage.allocated,
        );
        if buffer.len() >= FLUSH_AT_BYTES {
            self.write_out(buffer);
        }
    }

    /// Writes everything buffered to stdout.
    pub fn flush(&self) {
        let buffer = lock(&self.buffer);
        if !buffer.is_empty() {
            self.write_out(buffer);
        }
    }

    fn write_out(&self, mut buffer: MutexGuard<'_, Vec<u8>>) {
        let chunk = std::mem::replace(&mut *buffer, Vec::with_capacity(FLUSH_AT_BYTES));
        // Take the output lock before releasing the buffer so chunks stay in order.
        let _output = lock(&self.output);
        drop(buffer);
        let mut stdout = std::io::stdout().lock();
        if let Err(error) = stdout.write_all(&chunk).and_then(|()| stdout.flush()) {
            tracing::error!(%error, "cannot write the access log");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
