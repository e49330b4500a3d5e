//! What a Lambda function writes to the server's stderr: its instances'
//! stdout and stderr, line by line, and the platform's `START`, `END`,
//! `REPORT` and timeout lines in AWS's format, each prefixed with
//! `[NAME] ` so that functions can be told apart.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, BufReader};

use super::ids;

/// Writes one line, `[name] text`, to stderr in a single write.
pub fn line(name: &str, text: &str) {
    line_of(name, &[text]);
}

/// Writes `[name] ` and `parts`, then a newline, to stderr in a single write.
fn line_of(name: &str, parts: &[&str]) {
    let mut buffer =
        Vec::with_capacity(name.len() + parts.iter().map(|p| p.len()).sum::<usize>() + 4);
    buffer.push(b'[');
    buffer.extend_from_slice(name.as_bytes());
    buffer.extend_from_slice(b"] ");
    for part in parts {
        buffer.extend_from_slice(part.as_bytes());
    }
    buffer.push(b'\n');
    // A failing stderr has nowhere to report to.
    let _ = std::io::stderr().lock().write_all(&buffer);
}

/// `START RequestId: … Version: $LATEST`.
pub fn start(name: &str, request_id: &str) {
    line_of(
        name,
        &["START RequestId: ", request_id, " Version: $LATEST"],
    );
}

/// What the `REPORT` line says about one invocation.
pub struct Report<'a> {
    /// The invocation's request id.
    pub request_id: &'a str,
    /// From the event's hand-out to the result.
    pub duration: Duration,
    /// The configured memory size in MB.
    pub memory_mb: u32,
    /// Peak resident memory of the instance in MB.
    pub max_memory_mb: u64,
    /// Set on the first invocation of an instance (cold start).
    pub init_duration: Option<Duration>,
}

/// `END RequestId: …` and
/// `REPORT RequestId: …\tDuration: X ms\tBilled Duration: Y ms\tMemory Size: M MB\tMax Memory Used: U MB[\tInit Duration: Z ms]`.
pub fn end(name: &str, report: &Report<'_>) {
    // One write for both lines (one system call per invocation fewer).
    let text = report_text(report);
    line_of(
        name,
        &[
            "END RequestId: ",
            report.request_id,
            "\n[",
            name,
            "] ",
            &text,
        ],
    );
}

fn report_text(report: &Report<'_>) -> String {
    let millis = report.duration.as_secs_f64() * 1000.0;
    let billed = report.duration.as_micros().div_ceil(1000).max(1);
    let mut text = format!(
        "REPORT RequestId: {}\tDuration: {millis:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
        report.request_id, report.memory_mb, report.max_memory_mb
    );
    if let Some(init) = report.init_duration {
        text.push_str(&format!(
            "\tInit Duration: {:.2} ms",
            init.as_secs_f64() * 1000.0
        ));
    }
    text
}

/// `2020-04-21T15:08:21.123Z <id> Task timed out after 3.00 seconds`: the
/// log line, which is also the error message a raw invoke returns.
pub fn timed_out_message(request_id: &str, timeout: Duration) -> String {
    format!(
        "{} {request_id} Task timed out after {:.2} seconds",
        ids::iso_time(SystemTime::now()),
        timeout.as_secs_f64()
    )
}

/// Peak resident memory of process `pid` in MB (rounded up), 0 if unknown.
pub fn max_memory_mb(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib.div_ceil(1024))
}

/// Longest line forwarded as one; a longer one is cut into pieces.
const MAX_LINE: u64 = 256 * 1024;

/// Forwards `stream` (an instance's stdout or stderr) to stderr line by line.
pub async fn forward(name: std::sync::Arc<str>, stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match (&mut lines)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buffer)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buffer);
                for part in record_lines(&text) {
                    line(&name, part);
                }
            }
        }
    }
}

/// The lines of one record: runtime clients write a multi-line record
/// (awslambdaric's traceback) as one line with `\r` between its lines, as
/// CloudWatch shows it; here each gets its own prefixed line. A record that
/// is only its ending is one empty line.
fn record_lines(record: &str) -> impl Iterator<Item = &str> {
    let record = record.trim_end_matches(['\n', '\r']);
    let mut parts = record.split('\r');
    let first = parts.next();
    first
        .into_iter()
        .chain(parts.filter(|part| !part.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriage_returns_split_a_record() {
        fn split(record: &str) -> Vec<&str> {
            record_lines(record).collect()
        }
        assert_eq!(
            split("[ERROR] boom\rTraceback:\r  File \"app.py\"\n"),
            vec!["[ERROR] boom", "Traceback:", "  File \"app.py\""]
        );
        assert_eq!(split("plain\r\n"), vec!["plain"]);
        assert_eq!(split("\n"), vec![""]);
    }

    #[test]
    fn report_format() {
        let report = Report {
            request_id: "r-1",
            duration: Duration::from_micros(2_591),
            memory_mb: 128,
            max_memory_mb: 25,
            init_duration: Some(Duration::from_micros(150_420)),
        };
        assert_eq!(
            report_text(&report),
            "REPORT RequestId: r-1\tDuration: 2.59 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 25 MB\tInit Duration: 150.42 ms"
        );
        let warm = Report {
            init_duration: None,
            duration: Duration::from_micros(40),
            ..report
        };
        assert!(report_text(&warm).ends_with(
            "Duration: 0.04 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 25 MB"
        ));
        assert!(timed_out_message("r-2", Duration::from_secs(3))
            .ends_with("Z r-2 Task timed out after 3.00 seconds"));
        assert!(max_memory_mb(std::process::id()) > 0);
    }
}
