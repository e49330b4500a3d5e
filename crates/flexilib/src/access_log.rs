//! The access log: one line per request on stdout, in the original's format:
//!
//! ```text
//! 127.0.0.1:59940 - - "GET / HTTP/1.1" 200 ttfb 2000.420ms 11 ttlb 2000.568ms (pre-alloc: 1569, alloc: 4350)
//! ```
//!
//! Lines are appended to an in-memory buffer; the housekeeping thread writes
//! it out at least once a second and as soon as it holds 64 KiB, and
//! [`AccessLog::flush`] runs on shutdown, so logging costs no syscall per
//! request, never blocks a request on stdout, and loses no line on a clean
//! exit.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

use hyper::{Method, Uri, Version};
use parking_lot::Mutex;

use crate::arena::ArenaUsage;

/// Buffer size that wakes the housekeeping thread to write it out.
const FLUSH_AT_BYTES: usize = 64 * 1024;
/// Buffer size past which lines are dropped (and counted) until stdout
/// catches up.
const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;

/// Everything one log line says.
#[derive(Debug)]
pub struct Entry<'a> {
    /// Client address, formatted.
    pub peer: &'a str,
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
    /// What the target adds: for a proxied request, the upstream server
    /// and its response time.
    pub note: Option<&'a TargetNote>,
}

/// A target's addition to the log line: ` KIND WHO TIMEms`, e.g.
/// ` upstream 127.0.0.1:9000 0.412ms`.
#[derive(Debug, Clone)]
pub struct TargetNote {
    /// What kind of peer answered (`upstream`).
    pub kind: &'static str,
    /// Which one.
    pub who: String,
    /// How long it took to answer.
    pub time: Duration,
}

/// A request refused at its head (400, 414, 431, 501): logged with the
/// request line as received, since no request was parsed.
#[derive(Debug)]
pub struct Refused<'a> {
    /// Client address, formatted.
    pub peer: &'a str,
    /// The first line the client sent, raw (escaped when written).
    pub request_line: &'a [u8],
    /// Response status.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// Time taken to answer.
    pub time: Duration,
}

/// How lines are written (`ACCESS_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// The original FlexiLib's line (see the module's documentation).
    #[default]
    Original,
    /// One JSON object per line ([`crate::access_log_json`]).
    Json,
}

/// Buffered writer of access-log lines to stdout.
///
/// The request path only appends to the buffer; it never writes to stdout,
/// so a stalled stdout (a full pipe to a log collector) cannot stall
/// requests. A buffer past [`FLUSH_AT_BYTES`] wakes the housekeeping thread,
/// which does the writing; past [`MAX_BUFFERED_BYTES`] new lines are dropped
/// and counted, and the count is reported on stderr.
#[derive(Debug, Default)]
pub struct AccessLog {
    format: LogFormat,
    buffer: Mutex<Vec<u8>>,
    /// Held while writing to stdout so that chunks keep their order.
    output: Mutex<()>,
    /// The thread that writes the buffer out.
    writer: OnceLock<Thread>,
    dropped: AtomicU64,
}

impl AccessLog {
    /// A log writing lines in `format`.
    pub fn new(format: LogFormat) -> Self {
        Self {
            format,
            ..Self::default()
        }
    }

    /// Registers the calling thread as the one woken to write a full buffer.
    pub fn set_writer_thread(&self) {
        let _ = self.writer.set(std::thread::current());
    }

    /// Appends one line.
    pub fn write(&self, entry: &Entry<'_>) {
        match self.format {
            LogFormat::Original => self.append(|buffer| format_line(buffer, entry)),
            LogFormat::Json => {
                self.append(|buffer| crate::access_log_json::format_line(buffer, entry))
            }
        }
    }

    /// Appends the line of a request refused at its head.
    pub fn write_refused(&self, refused: &Refused<'_>) {
        match self.format {
            LogFormat::Original => self.append(|buffer| format_refused(buffer, refused)),
            LogFormat::Json => {
                self.append(|buffer| crate::access_log_json::format_refused(buffer, refused));
            }
        }
    }

    fn append(&self, format: impl FnOnce(&mut Vec<u8>)) {
        let mut buffer = self.buffer.lock();
        if buffer.len() >= MAX_BUFFERED_BYTES {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = buffer.len();
        format(&mut buffer);
        let crossed = before < FLUSH_AT_BYTES && buffer.len() >= FLUSH_AT_BYTES;
        drop(buffer);
        if crossed {
            if let Some(writer) = self.writer.get() {
                writer.unpark();
            }
        }
    }

    /// Writes everything buffered to stdout (housekeeping thread, shutdown).
    pub fn flush(&self) {
        // The output lock first, so chunks keep their order; requests only
        // ever take the buffer lock, briefly.
        let _output = self.output.lock();
        let chunk = {
            let mut buffer = self.buffer.lock();
            if buffer.is_empty() {
                return;
            }
            std::mem::replace(&mut *buffer, Vec::with_capacity(FLUSH_AT_BYTES))
        };
        let mut stdout = std::io::stdout().lock();
        if let Err(error) = stdout.write_all(&chunk).and_then(|()| stdout.flush()) {
            tracing::error!(%error, "cannot write the access log");
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "access-log lines dropped: stdout is not keeping up"
            );
        }
    }
}

/// Appends `entry` as one line. Hand-rolled (itoa, fixed-point
/// milliseconds): `format!` cost more than the rest of the request path.
fn format_line(out: &mut Vec<u8>, entry: &Entry<'_>) {
    let mut integer = itoa::Buffer::new();
    out.extend_from_slice(entry.peer.as_bytes());
    out.extend_from_slice(b" - - \"");
    out.extend_from_slice(entry.method.as_str().as_bytes());
    out.push(b' ');
    match entry.target.path_and_query() {
        // `"` may appear in a request target; keep the quoted field intact.
        Some(target) if target.as_str().contains('"') => {
            out.extend_from_slice(target.as_str().replace('"', "%22").as_bytes());
        }
        Some(target) => out.extend_from_slice(target.as_str().as_bytes()),
        None => {
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{}", entry.target);
        }
    }
    out.push(b' ');
    out.extend_from_slice(version_text(entry.version));
    out.extend_from_slice(b"\" ");
    out.extend_from_slice(integer.format(entry.status).as_bytes());
    out.extend_from_slice(b" ttfb ");
    push_millis(out, entry.ttfb);
    out.push(b' ');
    out.extend_from_slice(integer.format(entry.bytes).as_bytes());
    out.extend_from_slice(b" ttlb ");
    push_millis(out, entry.ttlb);
    out.extend_from_slice(b" (pre-alloc: ");
    out.extend_from_slice(integer.format(entry.usage.preallocated).as_bytes());
    out.extend_from_slice(b", alloc: ");
    out.extend_from_slice(integer.format(entry.usage.allocated).as_bytes());
    out.push(b')');
    if let Some(note) = entry.note {
        out.push(b' ');
        out.extend_from_slice(note.kind.as_bytes());
        out.push(b' ');
        out.extend_from_slice(note.who.as_bytes());
        out.push(b' ');
        push_millis(out, note.time);
    }
    out.push(b'\n');
}

/// Appends a refused request's line: the request line as received, with
/// `"`, `\` and bytes outside printable ASCII escaped as `\xHH` (as nginx
/// escapes them), `-` if the client sent none; no arena was used.
fn format_refused(out: &mut Vec<u8>, refused: &Refused<'_>) {
    let mut integer = itoa::Buffer::new();
    out.extend_from_slice(refused.peer.as_bytes());
    out.extend_from_slice(b" - - \"");
    if refused.request_line.is_empty() {
        out.push(b'-');
    }
    for &byte in refused.request_line {
        if byte == b'"' || byte == b'\\' || !(0x20..0x7f).contains(&byte) {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        } else {
            out.push(byte);
        }
    }
    out.extend_from_slice(b"\" ");
    out.extend_from_slice(integer.format(refused.status).as_bytes());
    out.extend_from_slice(b" ttfb ");
    push_millis(out, refused.time);
    out.push(b' ');
    out.extend_from_slice(integer.format(refused.bytes).as_bytes());
    out.extend_from_slice(b" ttlb ");
    push_millis(out, refused.time);
    out.extend_from_slice(b" (pre-alloc: 0, alloc: 0)\n");
}

/// `1234.567ms`: milliseconds with three decimals (microsecond precision).
fn push_millis(out: &mut Vec<u8>, duration: Duration) {
    // u64 arithmetic: u128 division is a library call (584,000 years of
    // microseconds fit).
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    let mut integer = itoa::Buffer::new();
    out.extend_from_slice(integer.format(micros / 1000).as_bytes());
    let fraction = (micros % 1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
        b'm',
        b's',
    ]);
}

/// `HTTP/1.1` and the like.
pub fn version_text(version: Version) -> &'static [u8] {
    match version {
        Version::HTTP_09 => b"HTTP/0.9",
        Version::HTTP_10 => b"HTTP/1.0",
        Version::HTTP_11 => b"HTTP/1.1",
        Version::HTTP_2 => b"HTTP/2.0",
        Version::HTTP_3 => b"HTTP/3.0",
        _ => b"HTTP/?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_in_the_original_format() {
        let method = Method::GET;
        let target: Uri = "/a?b=c".parse().expect("uri");
        let mut out = Vec::new();
        format_line(
            &mut out,
            &Entry {
                peer: "127.0.0.1:59940",
                method: &method,
                target: &target,
                version: Version::HTTP_11,
                status: 200,
                ttfb: Duration::from_micros(2_000_420),
                bytes: 11,
                ttlb: Duration::from_micros(2_000_568),
                usage: ArenaUsage {
                    preallocated: 1569,
                    allocated: 4350,
                },
                note: None,
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "127.0.0.1:59940 - - \"GET /a?b=c HTTP/1.1\" 200 ttfb 2000.420ms 11 ttlb 2000.568ms (pre-alloc: 1569, alloc: 4350)\n"
        );
        out.clear();
        format_line(
            &mut out,
            &Entry {
                peer: "[::1]:4",
                method: &method,
                target: &target,
                version: Version::HTTP_10,
                status: 502,
                ttfb: Duration::from_micros(1500),
                bytes: 0,
                ttlb: Duration::from_micros(1600),
                usage: ArenaUsage::default(),
                note: Some(&TargetNote {
                    kind: "upstream",
                    who: "10.0.0.2:80".into(),
                    time: Duration::from_micros(1234),
                }),
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "[::1]:4 - - \"GET /a?b=c HTTP/1.0\" 502 ttfb 1.500ms 0 ttlb 1.600ms (pre-alloc: 0, alloc: 0) upstream 10.0.0.2:80 1.234ms\n"
        );
        out.clear();
        format_refused(
            &mut out,
            &Refused {
                peer: "127.0.0.1:5",
                request_line: b"GET /\"a\"\x01 HTTP/1.1",
                status: 400,
                bytes: 20,
                time: Duration::from_micros(12),
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "127.0.0.1:5 - - \"GET /\\x22a\\x22\\x01 HTTP/1.1\" 400 ttfb 0.012ms 20 ttlb 0.012ms (pre-alloc: 0, alloc: 0)\n"
        );
        out.clear();
        push_millis(&mut out, Duration::from_nanos(7_999));
        assert_eq!(out, b"0.007ms");
    }
}
