//! The access log's JSON format (`ACCESS_LOG_FORMAT=json`): one object per
//! line with the fields of the original-format line, for log collectors
//! that parse JSON. Written field by field into the log buffer (strings
//! escaped by `serde_json`), no intermediate value.
//!
//! ```text
//! {"time_ms":1733533817123,"peer":"127.0.0.1:59940","method":"GET","target":"/a?b=c","version":"HTTP/1.1","status":200,"ttfb_ms":2000.42,"bytes":11,"ttlb_ms":2000.568,"prealloc":1569,"alloc":4350}
//! ```

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use crate::access_log::{Entry, Refused};

/// Appends `entry` as one JSON line.
pub fn format_line(out: &mut Vec<u8>, entry: &Entry<'_>) {
    open(out, entry.peer);
    out.extend_from_slice(b",\"method\":");
    string(out, entry.method.as_str());
    out.extend_from_slice(b",\"target\":");
    match entry.target.path_and_query() {
        Some(target) => string(out, target.as_str()),
        None => string(out, &entry.target.to_string()),
    }
    out.extend_from_slice(b",\"version\":\"");
    out.extend_from_slice(crate::access_log::version_text(entry.version));
    out.push(b'"');
    close(
        out,
        entry.status,
        entry.ttfb,
        entry.bytes,
        entry.ttlb,
        (entry.usage.preallocated, entry.usage.allocated),
    );
    if let Some(note) = entry.note {
        out.extend_from_slice(b",\"target_kind\":");
        string(out, note.kind);
        out.extend_from_slice(b",\"target_peer\":");
        string(out, &note.who);
        out.extend_from_slice(b",\"target_ms\":");
        millis(out, note.time);
    }
    out.extend_from_slice(b"}\n");
}

/// Appends a request refused at its head: the request line as received
/// (bytes that are not UTF-8 replaced), `"refused":true`.
pub fn format_refused(out: &mut Vec<u8>, refused: &Refused<'_>) {
    open(out, refused.peer);
    out.extend_from_slice(b",\"request_line\":");
    string(out, &String::from_utf8_lossy(refused.request_line));
    out.extend_from_slice(b",\"refused\":true");
    close(
        out,
        refused.status,
        refused.time,
        refused.bytes,
        refused.time,
        (0, 0),
    );
    out.extend_from_slice(b"}\n");
}

/// `{"time_ms":…,"peer":…`.
fn open(out: &mut Vec<u8>, peer: &str) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    out.extend_from_slice(b"{\"time_ms\":");
    number(out, u64::try_from(now.as_millis()).unwrap_or(u64::MAX));
    out.extend_from_slice(b",\"peer\":");
    string(out, peer);
}

/// The fields every line ends with.
fn close(
    out: &mut Vec<u8>,
    status: u16,
    ttfb: Duration,
    bytes: u64,
    ttlb: Duration,
    (preallocated, allocated): (usize, usize),
) {
    out.extend_from_slice(b",\"status\":");
    number(out, u64::from(status));
    out.extend_from_slice(b",\"ttfb_ms\":");
    millis(out, ttfb);
    out.extend_from_slice(b",\"bytes\":");
    number(out, bytes);
    out.extend_from_slice(b",\"ttlb_ms\":");
    millis(out, ttlb);
    out.extend_from_slice(b",\"prealloc\":");
    number(out, preallocated as u64);
    out.extend_from_slice(b",\"alloc\":");
    number(out, allocated as u64);
}

fn string(out: &mut Vec<u8>, text: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn number(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Milliseconds as a JSON number with microsecond precision (`1.5`).
fn millis(out: &mut Vec<u8>, duration: Duration) {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    let _ = write!(out, "{}", micros as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::TargetNote;
    use crate::arena::ArenaUsage;
    use hyper::{Method, Uri, Version};

    #[test]
    fn lines_are_json_objects() {
        let method = Method::GET;
        let target: Uri = "/a?b=%22c%22".parse().expect("uri");
        let mut out = Vec::new();
        format_line(
            &mut out,
            &Entry {
                peer: "[::1]:4",
                method: &method,
                target: &target,
                version: Version::HTTP_11,
                status: 502,
                ttfb: Duration::from_micros(1500),
                bytes: 7,
                ttlb: Duration::from_micros(2_000_568),
                usage: ArenaUsage {
                    preallocated: 8,
                    allocated: 3,
                },
                note: Some(&TargetNote {
                    kind: "upstream",
                    who: "10.0.0.2:80".into(),
                    time: Duration::from_micros(1234),
                }),
            },
        );
        assert_eq!(out.last(), Some(&b'\n'));
        let line: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(line["target"], "/a?b=%22c%22");
        assert_eq!(line["status"], 502);
        assert_eq!(line["ttfb_ms"], 1.5);
        assert_eq!(line["ttlb_ms"], 2000.568);
        assert_eq!(line["bytes"], 7);
        assert_eq!(line["prealloc"], 8);
        assert_eq!(line["target_peer"], "10.0.0.2:80");
        assert_eq!(line["target_ms"], 1.234);
        assert!(line["time_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 1_600_000_000_000));

        out.clear();
        format_refused(
            &mut out,
            &Refused {
                peer: "127.0.0.1:5",
                request_line: b"GET /\"a\"\x01\xff HTTP/1.1",
                status: 400,
                bytes: 20,
                time: Duration::from_micros(12),
            },
        );
        let line: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(line["request_line"], "GET /\"a\"\u{1}\u{fffd} HTTP/1.1");
        assert_eq!(line["refused"], true);
        assert_eq!(line["status"], 400);
    }
}
