//! `[triggers] crons` on their schedule, as Cloudflare runs them: in UTC,
//! each firing `scheduled(event, env, ctx)` with the cron that fired.
//!
//! A route's instance owns one schedule thread; it sleeps until the next
//! firing of any of its crons and hands a scheduled event to a JS thread,
//! as a request is handed over. Dropping the [`Schedule`] (the instance is
//! retired) ends the thread.

use std::str::FromStr as _;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;

/// A cron expression that cannot be read, naming it.
#[derive(Debug, thiserror::Error)]
#[error("[triggers] crons: `{expression}`: {message}")]
pub struct CronError {
    expression: String,
    message: String,
}

/// Parses every expression (five fields, as Cloudflare's crons have them).
pub fn parse(expressions: &[String]) -> Result<Vec<(String, Cron)>, CronError> {
    expressions
        .iter()
        .map(|expression| {
            // Cloudflare's crons have five fields: nothing fires more often
            // than once a minute.
            if expression.split_whitespace().count() != 5 {
                return Err(CronError {
                    expression: expression.clone(),
                    message:
                        "a cron has five fields (minute hour day month weekday), as Cloudflare's"
                            .into(),
                });
            }
            Cron::from_str(expression)
                .map(|cron| (expression.clone(), cron))
                .map_err(|e| CronError {
                    expression: expression.clone(),
                    message: e.to_string(),
                })
        })
        .collect()
}

/// The running schedule of a route; dropping it stops the thread.
pub struct Schedule {
    _stop: mpsc::Sender<()>,
}

/// Which of `crons` fires next after `now`, and when.
fn next_after(crons: &[(String, Cron)], now: &DateTime<Utc>) -> Option<(DateTime<Utc>, usize)> {
    crons
        .iter()
        .enumerate()
        .filter_map(|(index, (_, cron))| {
            cron.find_next_occurrence(now, false)
                .ok()
                .map(|at| (at, index))
        })
        .min()
}

/// Starts the schedule thread for `crons` (none: no thread); `fire` hands
/// the cron that is due to a JS thread.
pub fn start(
    route: &str,
    crons: Vec<(String, Cron)>,
    fire: impl Fn(&str) + Send + 'static,
) -> std::io::Result<Option<Schedule>> {
    if crons.is_empty() {
        return Ok(None);
    }
    let (stop, stopped) = mpsc::channel::<()>();
    let route = route.to_string();
    std::thread::Builder::new()
        .name("worker-cron".into())
        .spawn(move || loop {
            let now = Utc::now();
            let Some((at, index)) = next_after(&crons, &now) else {
                crate::report::log(&route, "no cron of [triggers] fires again");
                return;
            };
            let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
            match stopped.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {
                    // Woken early by a coarse clock: wait again.
                    if Utc::now() < at {
                        continue;
                    }
                    if let Some((expression, _)) = crons.get(index) {
                        fire(expression);
                    }
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        })?;
    Ok(Some(Schedule { _stop: stop }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_read_and_the_nearest_firing_wins() {
        let crons = parse(&["0 * * * *".into(), "*/15 * * * *".into()]).expect("crons");
        let now = DateTime::parse_from_rfc3339("2026-12-06T10:07:30Z")
            .expect("time")
            .with_timezone(&Utc);
        let (at, index) = next_after(&crons, &now).expect("a next firing");
        assert_eq!(index, 1);
        assert_eq!(at.to_rfc3339(), "2026-12-06T10:15:00+00:00");
        let error = parse(&["61 * * * *".into()]).expect_err("an error");
        assert!(
            error
                .to_string()
                .starts_with("[triggers] crons: `61 * * * *`: "),
            "{error}"
        );
    }
}
