//! Repeated warnings, rate-limited: a library that fails the same way on
//! every request must not write a line to stderr for every request.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Distinct warnings remembered; past this, the memory starts afresh.
const MAX_KEYS: usize = 64;

/// Lets the first warning of each kind (its key, e.g. its text) through,
/// then at most one per period, counting those it holds back.
#[derive(Debug)]
pub struct RateLimit {
    period: Duration,
    /// Per key: when a warning was last let through, and how many were held
    /// back since.
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl RateLimit {
    /// One warning of a kind per `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(n)` if a warning of kind `key` may be logged now, `n` being how
    /// many were held back since the last one; `None` to hold it back.
    pub fn check(&self, key: &str) -> Option<u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock();
        if let Some((last, held)) = seen.get_mut(key) {
            if now.saturating_duration_since(*last) < self.period {
                *held += 1;
                return None;
            }
            *last = now;
            return Some(std::mem::take(held));
        }
        if seen.len() >= MAX_KEYS {
            seen.clear();
        }
        seen.insert(key.to_string(), (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_kind_and_period_with_the_count_held_back() {
        let limit = RateLimit::new(Duration::from_secs(10));
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        assert_eq!(limit.check_at("a", at(0)), Some(0));
        assert_eq!(limit.check_at("b", at(0)), Some(0));
        assert_eq!(limit.check_at("a", at(1)), None);
        assert_eq!(limit.check_at("a", at(9)), None);
        assert_eq!(limit.check_at("b", at(9)), None);
        assert_eq!(limit.check_at("a", at(10)), Some(2));
        assert_eq!(limit.check_at("a", at(11)), None);
        assert_eq!(limit.check_at("a", at(30)), Some(1));
        assert_eq!(limit.check_at("b", at(30)), Some(1));
    }

    #[test]
    fn memory_is_bounded() {
        let limit = RateLimit::new(Duration::from_secs(10));
        let now = Instant::now();
        for n in 0..1000 {
            assert_eq!(limit.check_at(&n.to_string(), now), Some(0));
        }
        assert!(limit.seen.lock().len() <= MAX_KEYS);
    }
}
