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

use super::instances::{LambdaRow, LibraryGauge};
use super::route_stats::{StatsSnapshot, STATUS_CLASSES};
use crate::targets::lambda::pool::Census;

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
    /// Lambda functions (of `lambda:` and `sam:` routes) and their instances.
    pub lambda: Vec<LambdaRow>,
    /// What library routes' instances report (Workers, WebAssembly, …),
    /// checked.
    pub library_gauges: Vec<LibraryGauge>,
}

/// Reads one number of a function's census.
type ReadCensus = fn(&Census) -> u32;

/// The states `flexilib_lambda_instances` has, and where each is counted.
const LAMBDA_STATES: [(&str, ReadCensus); 4] = [
    ("starting", |census| census.starting),
    ("busy", |census| census.busy),
    ("idle", |census| census.idle),
    ("stopping", |census| census.stopping),
];

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
        self.encode_lambda(&mut encoder)?;
        self.encode_library_gauges(&mut encoder)
    }
}

impl Scrape {
    /// The Lambda families: instances by state, the queue, the limit.
    fn encode_lambda(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut instances = encoder.encode_descriptor(
            "flexilib_lambda_instances",
            "Lambda function instances (processes) by state: starting (spawning, or its runtime \
             not yet asking for an event), busy (running an invocation), idle (waiting for one), \
             stopping (killed, not yet exited)",
            None,
            MetricType::Gauge,
        )?;
        for row in &self.lambda {
            for (state, count) in LAMBDA_STATES {
                let labels = [
                    ("route", row.route.as_str()),
                    ("function", row.function.as_str()),
                    ("state", state),
                ];
                ConstGauge::new(i64::from(count(&row.census)))
                    .encode(instances.encode_family(&labels)?)?;
            }
        }
        let per_function: [(&str, &str, ReadCensus); 2] = [
            (
                "flexilib_lambda_queued_invocations",
                "Invocations waiting for a Lambda instance (the function's queue, and asynchronous \
                 Invoke API events)",
                |census| census.queued,
            ),
            (
                "flexilib_lambda_concurrency_limit",
                "Most instances of a Lambda function's current code at once (concurrency=)",
                |census| census.limit,
            ),
        ];
        for (name, help, value) in per_function {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for row in &self.lambda {
                let labels = [
                    ("route", row.route.as_str()),
                    ("function", row.function.as_str()),
                ];
                ConstGauge::new(i64::from(value(&row.census)))
                    .encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    /// The gauges libraries report, one family per name (its help is the
    /// first route's that reported it), labelled with the route.
    fn encode_library_gauges(
        &self,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let mut families: Vec<&LibraryGauge> = Vec::new();
        for gauge in &self.library_gauges {
            if !families.iter().any(|first| first.family == gauge.family) {
                families.push(gauge);
            }
        }
        for first in families {
            let mut metric =
                encoder.encode_descriptor(&first.family, &first.help, None, MetricType::Gauge)?;
            for gauge in self
                .library_gauges
                .iter()
                .filter(|gauge| gauge.family == first.family)
            {
                let labels = [("route", gauge.route.as_str())];
                ConstGauge::new(gauge.value).encode(metric.encode_family(&labels)?)?;
            }
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
            lambda: vec![LambdaRow {
                route: "/fn".into(),
                function: "f".into(),
                census: Census {
                    starting: 1,
                    busy: 2,
                    idle: 3,
                    stopping: 0,
                    queued: 4,
                    limit: 10,
                },
            }],
            library_gauges: [("/w", "wasm_x", 2.0), ("/v", "wasm_x", 0.5)]
                .into_iter()
                .flat_map(|(route, name, value)| {
                    crate::metrics::instances::library_gauges(
                        route,
                        vec![(name.into(), format!("help of {route}").into(), value)],
                    )
                })
                .collect(),
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
            "# TYPE flexilib_lambda_instances gauge",
            r#"flexilib_lambda_instances{route="/fn",function="f",state="starting"} 1"#,
            r#"flexilib_lambda_instances{route="/fn",function="f",state="busy"} 2"#,
            r#"flexilib_lambda_instances{route="/fn",function="f",state="idle"} 3"#,
            r#"flexilib_lambda_instances{route="/fn",function="f",state="stopping"} 0"#,
            r#"flexilib_lambda_queued_invocations{route="/fn",function="f"} 4"#,
            r#"flexilib_lambda_concurrency_limit{route="/fn",function="f"} 10"#,
            "# HELP flexilib_library_wasm_x help of /w",
            "# TYPE flexilib_library_wasm_x gauge",
            r#"flexilib_library_wasm_x{route="/w"} 2.0"#,
            r#"flexilib_library_wasm_x{route="/v"} 0.5"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        let families = text
            .lines()
            .filter(|l| *l == "# TYPE flexilib_library_wasm_x gauge")
            .count();
        assert_eq!(families, 1, "one family for both routes:\n{text}");
    }
}
