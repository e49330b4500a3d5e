//! A route's request rate per client IP (`limit_rate=`, `limit_burst=`): a
//! token bucket per client, refilled continuously. A client with no token
//! left is answered `429 Too Many Requests` with `Retry-After`.
//!
//! Buckets are kept in one map per route. A full bucket holds nothing a
//! fresh one would not, so when the map reaches [`MAX_CLIENTS`] those are
//! dropped; if every client is still limited, the oldest bucket goes (a
//! client flood costs bounded memory, at worst forgetting a client).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::RateSpec;

/// Clients remembered per route.
pub const MAX_CLIENTS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One route's limiter.
#[derive(Debug)]
pub struct ClientLimit {
    spec: RateSpec,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl ClientLimit {
    /// A limiter for `spec`.
    pub fn new(spec: RateSpec) -> Self {
        Self {
            spec,
            buckets: Mutex::default(),
        }
    }

    /// What it limits to.
    pub fn spec(&self) -> RateSpec {
        self.spec
    }

    /// Takes a token for `client`, or says how long until one is there.
    pub fn take(&self, client: &str) -> Result<(), Duration> {
        self.take_at(client, Instant::now())
    }

    fn take_at(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let RateSpec { per_second, burst } = self.spec;
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(client) && buckets.len() >= MAX_CLIENTS {
            prune(&mut buckets, self.spec, now);
        }
        let bucket = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// Drops the buckets that have refilled; if none has, the oldest.
fn prune(buckets: &mut HashMap<String, Bucket>, spec: RateSpec, now: Instant) {
    buckets.retain(|_, bucket| {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens + elapsed * spec.per_second < spec.burst
    });
    if buckets.len() >= MAX_CLIENTS {
        let oldest = buckets
            .iter()
            .min_by_key(|(_, bucket)| bucket.at)
            .map(|(client, _)| client.clone());
        if let Some(client) = oldest {
            buckets.remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limit = ClientLimit::new(RateSpec {
            per_second: 2.0,
            burst: 3.0,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limit.take_at("a", start).is_ok());
        }
        let wait = limit.take_at("a", start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // Another client has its own bucket.
        assert!(limit.take_at("b", start).is_ok());
        // Half a second later, one more.
        let later = start + Duration::from_millis(500);
        assert!(limit.take_at("a", later).is_ok());
        assert!(limit.take_at("a", later).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let limit = ClientLimit::new(RateSpec {
            per_second: 1.0,
            burst: 1.0,
        });
        let now = Instant::now();
        for n in 0..MAX_CLIENTS + 10 {
            let _ = limit.take_at(&n.to_string(), now);
        }
        assert!(limit.buckets.lock().len() <= MAX_CLIENTS);
    }
}
