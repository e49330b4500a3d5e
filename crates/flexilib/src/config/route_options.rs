//! The server's own route options, taken out of a rule's value before the
//! target's parser sees it (any kind of target, any token but the first):
//!
//! * `compress=on|off` — responses may be compressed (default on);
//! * `limit_rate=N/s` (or `N/m`) — requests per client IP, a token bucket
//!   refilled at that rate, answered `429` with `Retry-After` past it;
//! * `limit_burst=N` — how many requests a client may make at once before
//!   the rate applies (default: one second's worth, at least 1);
//! * `request_timeout=SECONDS` — longest wait for the target's answer (its
//!   response head), then `504` (not `timeout=`, which a Lambda function's
//!   own option is).

use std::borrow::Cow;
use std::time::Duration;

/// A route's request rate per client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSpec {
    /// Requests per second, refilled continuously.
    pub per_second: f64,
    /// Requests a client may make at once.
    pub burst: f64,
}

/// The server's own options of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOptions {
    /// Responses may be compressed.
    pub compress: bool,
    /// Requests per client IP.
    pub rate: Option<RateSpec>,
    /// Longest wait for the target's answer (`request_timeout=`).
    pub timeout: Option<Duration>,
}

impl Default for RouteOptions {
    fn default() -> Self {
        Self {
            compress: true,
            rate: None,
            timeout: None,
        }
    }
}

/// Takes the server's options out of `value`; the rest (the target and its
/// own options) is returned for the target's parser.
pub fn take(value: &str) -> Result<(Cow<'_, str>, RouteOptions), String> {
    let mut options = RouteOptions::default();
    let mut burst: Option<f64> = None;
    let mut found = false;
    let mut kept = Vec::new();
    for (index, token) in value.split_whitespace().enumerate() {
        let Some((key, setting)) = token.split_once('=').filter(|_| index > 0) else {
            kept.push(token);
            continue;
        };
        match key {
            "compress" => {
                options.compress = match setting {
                    "on" | "yes" | "true" => true,
                    "off" | "no" | "false" => false,
                    _ => return Err(format!("`compress` is `on` or `off`, not `{setting}`")),
                };
            }
            "limit_rate" => options.rate = Some(rate(setting)?),
            "limit_burst" => {
                let n: u32 = setting.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    format!(
                        "`limit_burst` is a whole number of requests, 1 or more, not `{setting}`"
                    )
                })?;
                burst = Some(f64::from(n));
            }
            "request_timeout" => {
                let seconds: f64 = setting
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                    .ok_or_else(|| {
                        format!(
                            "`request_timeout` is seconds (more than 0, at most 86400), not `{setting}`"
                        )
                    })?;
                options.timeout = Some(Duration::from_secs_f64(seconds));
            }
            _ => {
                kept.push(token);
                continue;
            }
        }
        found = true;
    }
    match (&mut options.rate, burst) {
        (Some(rate), Some(burst)) => rate.burst = burst,
        (None, Some(_)) => return Err("`limit_burst` needs `limit_rate`".into()),
        _ => {}
    }
    Ok(if found {
        (Cow::Owned(kept.join(" ")), options)
    } else {
        (Cow::Borrowed(value), options)
    })
}

/// `N/s` or `N/m` (`r/s` as nginx writes it is accepted too).
fn rate(setting: &str) -> Result<RateSpec, String> {
    let bad = || {
        format!(
            "`limit_rate` is requests per second or minute, as `10/s` or `30/m`, not `{setting}`"
        )
    };
    let (count, unit) = setting.split_once('/').ok_or_else(bad)?;
    let count: f64 = count
        .trim_end_matches('r')
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)
        .ok_or_else(bad)?;
    let per_second = match unit {
        "s" => count,
        "m" => count / 60.0,
        _ => return Err(bad()),
    };
    Ok(RateSpec {
        per_second,
        burst: per_second.max(1.0).floor(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_of_any_target_are_taken_out() {
        let (rest, options) =
            take("lib.so key=v limit_rate=10/s limit_burst=5 request_timeout=2.5").unwrap();
        assert_eq!(rest, "lib.so key=v");
        assert_eq!(
            options.rate,
            Some(RateSpec {
                per_second: 10.0,
                burst: 5.0
            })
        );
        assert_eq!(options.timeout, Some(Duration::from_millis(2500)));
        assert!(options.compress);
        let (_, options) = take("http://x limit_rate=30r/m").unwrap();
        assert_eq!(
            options.rate,
            Some(RateSpec {
                per_second: 0.5,
                burst: 1.0
            })
        );
        // The first token is the target, whatever it looks like; a
        // target's own options stay (a Lambda function's `timeout=`).
        assert_eq!(take("timeout=3").unwrap().0, "timeout=3");
        assert_eq!(
            take("lambda:fn timeout=3").unwrap().0,
            "lambda:fn timeout=3"
        );
    }

    #[test]
    fn bad_values_are_named() {
        assert!(take("lib.so limit_rate=fast")
            .unwrap_err()
            .contains("`limit_rate`"));
        assert!(take("lib.so limit_rate=0/s").is_err());
        assert!(take("lib.so limit_burst=3")
            .unwrap_err()
            .contains("needs `limit_rate`"));
        assert!(take("lib.so request_timeout=-1")
            .unwrap_err()
            .contains("`request_timeout`"));
        assert!(take("lib.so compress=maybe")
            .unwrap_err()
            .contains("`compress`"));
    }
}
