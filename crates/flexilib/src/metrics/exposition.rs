//! The Prometheus text the admin listener's `/metrics` serves, written by
//! the `prometheus-client` crate from a [`Scrape`]: a snapshot of the
//! counters taken when the scrape arrives, encoded through a
//! [`Collector`] (the counters themselves are plain atomics, see
//! [`super::route_stats`]).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::route_stats::{StatsSnapshot, STATUS_CLASSES};

/// The `Content-Type` of what [`render`] writes (text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Label value of the requests no route took.
pub const UNROUTED: &str = "";

/// Reads one counter of a route's snapshot.
type ReadCounter = fn(&StatsSnapshot) -> u64;

/// Everything one scrape reports, read at one moment.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Per route (and one row with route `""` and kind `none` for the
    /// requests no route took).
    pub routes: Vec<RouteRow>,
    /// Open client connections on the public listeners.
    pub open_connections: u64,
    /// Accepted config reloads.
    pub config_reloads: u64,
    /// Rejected config reloads.
    pub config_reload_failures: u64,
    /// The live route table's generation.
    pub config_generation: u64,
    /// 1 while ready (see `/readyz`), else 0.
    pub ready: bool,
    /// Upstream servers: route key, `host:port`, in use.
    pub upstreams: Vec<(String, String, bool)>,
}

/// One route's counters.
#[derive(Debug)]
pub struct RouteRow {
    /// The key as written in the config.
    pub route: String,
    /// Its target kind.
    pub kind: &'static str,
    /// Its counters.
    pub stats: StatsSnapshot,
}

/// `scrape` in the Prometheus text format.
pub fn render(scrape: Scrape) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut requests = encoder.encode_descriptor(
            "flexilib_requests",
            "Requests answered, by route, target kind and status class (499: the client left first)",
            None,
            MetricType::Counter,
        )?;
        for row in &self.routes {
            for (class, count) in STATUS_CLASSES.iter().zip(row.stats.by_class) {
                let labels = [
                    ("route", row.route.as_str()),
                    ("kind", row.kind),
                    ("status_class", class),
                ];
                ConstCounter::new(count).encode(requests.encode_family(&labels)?)?;
            }
        }

        let mut latency = encoder.encode_descriptor(
            "flexilib_request_duration_seconds",
            "Time from the request head to the last response byte handed to the connection",
            None,
            MetricType::Histogram,
        )?;
        for row in &self.routes {
            let labels = [("route", row.route.as_str()), ("kind", row.kind)];
            let histogram = &row.stats.latency;
            latency
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    histogram.sum_seconds,
                    histogram.count,
                    &histogram.buckets,
                    None,
                )?;
        }

        let per_route_counters: [(&str, &str, ReadCounter); 2] = [
            (
                "flexilib_received_bytes",
                "Bytes read from clients for requests (heads and bodies)",
                |stats| stats.bytes_received,
            ),
            (
                "flexilib_sent_body_bytes",
                "Response body bytes delivered to clients",
                |stats| stats.body_bytes_sent,
            ),
        ];
        for (name, help, value) in per_route_counters {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for row in &self.routes {
                let labels = [("route", row.route.as_str()), ("kind", row.kind)];
                ConstCounter::new(value(&row.stats)).encode(metric.encode_family(&labels)?)?;
            }
        }

        let counters = [
            (
                "flexilib_config_reloads",
                "Config reloads accepted",
                self.config_reloads,
            ),
            (
                "flexilib_config_reload_failures",
                "Config reloads rejected (the previous routes kept serving)",
                self.config_reload_failures,
            ),
        ];
        for (name, help, value) in counters {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }

        let gauges = [
            (
                "flexilib_open_connections",
                "Client connections open on the public listeners",
                self.open_connections,
            ),
            (
                "flexilib_config_generation",
                "Generation of the live route table (1 at start, one more per accepted reload)",
                self.config_generation,
            ),
            (
                "flexilib_ready",
                "1 while the server is ready (see /readyz), else 0",
                u64::from(self.ready),
            ),
        ];
        for (name, help, value) in gauges {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)?;
        }

        let mut upstreams = encoder.encode_descriptor(
            "flexilib_upstream_up",
            "1 if an upstream server is in use, 0 while it cools down after a failed connection",
            None,
            MetricType::Gauge,
        )?;
        for (route, server, up) in &self.upstreams {
            let labels = [("route", route.as_str()), ("server", server.as_str())];
            ConstGauge::new(i64::from(*up)).encode(upstreams.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::route_stats::{Outcome, RouteStats};
    use std::time::Duration;

    #[test]
    fn a_scrape_is_prometheus_text() {
        let stats = RouteStats::default();
        stats.record(&Outcome {
            status: 200,
            elapsed: Duration::from_millis(3),
            bytes_received: 40,
            body_bytes_sent: 2,
        });
        let text = render(Scrape {
            routes: vec![RouteRow {
                route: "/a \"b\"".into(),
                kind: "library",
                stats: stats.snapshot(),
            }],
            config_generation: 2,
            upstreams: vec![("/api".into(), "127.0.0.1:9".into(), false)],
            ..Scrape::default()
        })
        .unwrap_or_else(|error| panic!("{error}"));
        for line in [
            "# TYPE flexilib_requests_total counter",
            r#"flexilib_requests_total{route="/a \"b\"",kind="library",status_class="2xx"} 1"#,
            r#"flexilib_request_duration_seconds_bucket{route="/a \"b\"",kind="library",le="0.005"} 1"#,
            r#"flexilib_received_bytes_total{route="/a \"b\"",kind="library"} 40"#,
            "flexilib_config_generation 2",
            r#"flexilib_upstream_up{route="/api",server="127.0.0.1:9"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
