//! What the server counts for one route: requests by status class, their
//! latency, and bytes each way. Plain atomics, written by whichever I/O
//! thread served the request when its log line is written, read by the
//! admin listener; nothing on the request path takes a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::latency::{LatencyHistogram, Snapshot};

/// The status classes counted, `1xx` to `5xx`.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The counters of one route (or of the requests no route took).
#[derive(Debug, Default)]
pub struct RouteStats {
    by_class: [AtomicU64; STATUS_CLASSES.len()],
    latency: LatencyHistogram,
    bytes_received: AtomicU64,
    body_bytes_sent: AtomicU64,
}

/// One request, as counted.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Its status (499 for a client that left).
    pub status: u16,
    /// From its head to the last body byte handed to the connection.
    pub elapsed: Duration,
    /// Bytes read from the client's connection since the previous request
    /// was counted (this head and body).
    pub bytes_received: u64,
    /// Response body bytes delivered.
    pub body_bytes_sent: u64,
}

/// The counters read at one moment.
#[derive(Debug, Clone)]
pub struct StatsSnapshot {
    /// Requests per class, in [`STATUS_CLASSES`] order.
    pub by_class: [u64; STATUS_CLASSES.len()],
    /// Their latency.
    pub latency: Snapshot,
    /// Bytes read from clients.
    pub bytes_received: u64,
    /// Response body bytes delivered.
    pub body_bytes_sent: u64,
}

impl RouteStats {
    /// Counts one finished request.
    pub fn record(&self, outcome: &Outcome) {
        let class = usize::from(outcome.status / 100)
            .clamp(1, STATUS_CLASSES.len())
            .saturating_sub(1);
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(outcome.elapsed);
        if outcome.bytes_received > 0 {
            self.bytes_received
                .fetch_add(outcome.bytes_received, Ordering::Relaxed);
        }
        if outcome.body_bytes_sent > 0 {
            self.body_bytes_sent
                .fetch_add(outcome.body_bytes_sent, Ordering::Relaxed);
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            by_class: std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed)),
            latency: self.latency.snapshot(),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            body_bytes_sent: self.body_bytes_sent.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_count_by_class() {
        let stats = RouteStats::default();
        for status in [200, 204, 304, 404, 499, 502, 0, 999] {
            stats.record(&Outcome {
                status,
                elapsed: Duration::from_millis(1),
                bytes_received: 10,
                body_bytes_sent: 5,
            });
        }
        let snapshot = stats.snapshot();
        // 0 counts as 1xx and 999 as 5xx: neither is ever logged, but
        // neither may index out of the table.
        assert_eq!(snapshot.by_class, [1, 2, 1, 2, 2]);
        assert_eq!(snapshot.latency.count, 8);
        assert_eq!(snapshot.bytes_received, 80);
        assert_eq!(snapshot.body_bytes_sent, 40);
    }
}
