//! Diagnostics reach stderr without the logging thread ever waiting for it.
//!
//! In the worker, every diagnostic line (a `tracing` event) is handed to a
//! bounded queue, and the `flexilib-stderr` thread writes them out. A
//! request thread that logs never blocks in `write(2)` on a pipe nobody
//! reads, as the access log never blocks on stdout. If stderr falls more
//! than [`QUEUE_LINES`] lines behind, further lines are dropped and
//! counted, and the count is written once stderr moves again.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Lines that may wait for stderr.
pub const QUEUE_LINES: usize = 4096;

enum Message {
    /// One formatted event.
    Line(Vec<u8>),
    /// Answer once everything before this is written.
    Flush(SyncSender<()>),
}

static QUEUE: OnceLock<SyncSender<Message>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Starts the writer thread. Until it runs (or if it cannot start), lines
/// are written directly.
pub fn start() -> std::io::Result<()> {
    let (queue, lines) = sync_channel(QUEUE_LINES);
    std::thread::Builder::new()
        .name("flexilib-stderr".into())
        .spawn(move || write_out(&lines))?;
    let _ = QUEUE.set(queue);
    Ok(())
}

fn write_out(lines: &Receiver<Message>) {
    for message in lines {
        match message {
            Message::Line(line) => {
                let mut stderr = std::io::stderr().lock();
                let dropped = DROPPED.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    let _ = writeln!(
                        stderr,
                        "flexilib: {dropped} diagnostic lines dropped: stderr was not keeping up"
                    );
                }
                let _ = stderr.write_all(&line);
            }
            Message::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Waits, up to `timeout`, until every line logged so far is written (at
/// exit, so that none is lost).
pub fn flush(timeout: Duration) {
    let Some(queue) = QUEUE.get() else {
        return;
    };
    let (done, written) = sync_channel(1);
    // A full queue means stderr is stuck: waiting would not help.
    if queue.try_send(Message::Flush(done)).is_ok() {
        let _ = written.recv_timeout(timeout);
    }
}

/// The `tracing` writer: one [`EventWriter`] per event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NonBlocking;

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter(Vec::new())
    }
}

/// Collects one event's text and queues it when dropped.
#[derive(Debug)]
pub struct EventWriter(Vec<u8>);

impl std::io::Write for EventWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.0);
        match QUEUE.get() {
            Some(queue) => {
                if queue.try_send(Message::Line(line)).is_err() {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                let _ = std::io::stderr().write_all(&line);
            }
        }
    }
}
