//! The admin listener's `/metrics`, scraped and parsed by Python's
//! `prometheus-client` (PyPI, installed by
//! `scripts/install-metrics-client.sh`; the tests fail, naming it, when it
//! is missing).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{workspace, Server};

/// The admin address, from the `admin_address=ADDR` line the server logs.
pub fn admin_address(server: &Server) -> SocketAddr {
    let line = server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("admin_address="))
        .expect("the server logs its admin address");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("admin_address="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// The Python of the venv `scripts/install-metrics-client.sh` makes.
pub fn metrics_python() -> PathBuf {
    let python = workspace().join("target/metrics-venv/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-metrics-client.sh",
        python.display()
    );
    python
}

/// One scrape: every sample as `{"name", "labels", "value"}`, and each
/// family's type (by family name).
pub struct Scraped {
    pub samples: Vec<Value>,
    pub types: Value,
}

impl Scraped {
    /// The value of the sample `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        sample(&self.samples, name, labels)
    }

    /// The samples called `name`.
    pub fn named(&self, name: &str) -> Vec<&Value> {
        self.samples.iter().filter(|s| s["name"] == name).collect()
    }
}

/// Scrapes `/metrics` with Python's `prometheus-client` parser.
pub fn scrape(admin: SocketAddr) -> Scraped {
    const SCRIPT: &str = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.headers["Content-Type"]
    text = response.read().decode()
samples, types = [], {}
for family in text_string_to_metric_families(text):
    types[family.name] = family.type
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps({"samples": samples, "types": types}))
"#;
    let output = Command::new(metrics_python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(format!("http://{admin}/metrics"))
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "the scrape did not parse: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    Scraped {
        samples: parsed["samples"].as_array().cloned().unwrap_or_default(),
        types: parsed["types"].clone(),
    }
}

/// Scrapes until `done` holds (true: that scrape), or `timeout` passes
/// (`Err`: the last scrape, for the failure's message).
pub fn scrape_until(
    admin: SocketAddr,
    timeout: Duration,
    done: impl Fn(&Scraped) -> bool,
) -> Result<Scraped, Scraped> {
    let deadline = Instant::now() + timeout;
    loop {
        let scraped = scrape(admin);
        if done(&scraped) {
            return Ok(scraped);
        }
        if Instant::now() > deadline {
            return Err(scraped);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of the sample `name` whose labels include `labels`.
pub fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .iter()
                    .all(|(key, value)| s["labels"][*key].as_str() == Some(*value))
        })
        .and_then(|s| s["value"].as_f64())
}
