//! Durable Object alarms: `ctx.storage.setAlarm(time)` stores the time in
//! the class's store (`alarms` table, so it survives a restart) and
//! schedules a task on the instance's I/O runtime that, at that time, calls
//! the object's `alarm({ retryCount, isRetry, scheduledTime })` as any other
//! call to the object (in turn, on its home JS thread, under the CPU
//! limit). An alarm that throws is retried with exponential backoff (1 s,
//! 2 s, 4 s…) up to six times, as Cloudflare retries; one that succeeds is
//! deleted unless the handler set another. An instance starting (a
//! restart, a reload) schedules every stored alarm again; tasks end with
//! the instance's runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::report::log;
use crate::shared::{ObjectTarget, Shared};

/// The most alarms one instance keeps scheduled (one per object): a
/// script setting alarms on objects without end holds no more tasks.
pub const MAX_SCHEDULED: usize = 65_536;

/// Retries of an alarm whose handler throws.
const MAX_RETRIES: u32 = 6;

/// The alarms this instance has scheduled: (namespace, object) → time
/// (ms since the epoch). A task fires only while its time is still here.
#[derive(Default)]
pub struct Alarms {
    set: Mutex<HashMap<(usize, String), i64>>,
    /// The instance is retired: its alarms no longer fire (the instance
    /// replacing it has scheduled them).
    retired: AtomicBool,
}

impl Alarms {
    /// Stops this instance's alarms from firing.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    /// Whether object `object` of namespace `binding` may set an alarm:
    /// it has one already, or there is room for another.
    pub fn has_room(&self, binding: usize, object: &str) -> bool {
        let set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        set.len() < MAX_SCHEDULED || set.contains_key(&(binding, object.to_string()))
    }

    fn is_current(&self, key: &(usize, String), at: i64) -> bool {
        !self.retired.load(Ordering::Relaxed)
            && self
                .set
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
                == Some(&at)
    }
}

/// Now, ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Schedules (`Some(at)`) or cancels (`None`) object `object`'s alarm of
/// namespace `binding` (already stored).
pub fn schedule(shared: &Arc<Shared>, binding: usize, object: String, at: Option<i64>) {
    let key = (binding, object);
    {
        let mut set = shared
            .alarms
            .set
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match at {
            Some(at) => set.insert(key.clone(), at),
            None => set.remove(&key),
        };
    }
    let Some(at) = at else { return };
    let weak = Arc::downgrade(shared);
    shared.handle.spawn(async move {
        let wait = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        fire(weak, key, at).await;
    });
}

/// Schedules every alarm stored for this instance's classes.
pub fn resume(shared: &Arc<Shared>) {
    for (binding, store) in shared.objects.iter().enumerate() {
        match store.alarms() {
            Ok(alarms) => {
                for (object, at) in alarms {
                    if !shared.alarms.has_room(binding, &object) {
                        log(
                            &shared.config.route,
                            &format!(
                                "Durable Object alarms past {MAX_SCHEDULED} are not scheduled"
                            ),
                        );
                        break;
                    }
                    schedule(shared, binding, object, Some(at));
                }
            }
            Err(e) => log(
                &shared.config.route,
                &format!("Durable Object alarms cannot be read: {e}"),
            ),
        }
    }
}

/// Calls the object's `alarm()` (retrying on failure) while its alarm is
/// still set for `at`.
async fn fire(shared: Weak<Shared>, key: (usize, String), at: i64) {
    for retry in 0..=MAX_RETRIES {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        if !strong.alarms.is_current(&key, at) {
            return;
        }
        let Some(home) = strong.objects_home.get().cloned() else {
            return;
        };
        let target = ObjectTarget {
            binding: key.0,
            id: key.1.clone(),
            rpc: Some(format!("\0alarm:{retry}:{at}")),
        };
        let answer = crate::services::call_object_in_turn(
            &strong,
            home,
            target,
            "POST".into(),
            "http://durable-object/alarm".into(),
            Vec::new(),
            Vec::new(),
        )
        .await;
        let succeeded = match &answer {
            Ok(answer) => {
                answer.status == 200
                    && serde_json::from_slice::<serde_json::Value>(&answer.body)
                        .is_ok_and(|v| v.get("error").is_none())
            }
            Err(_) => false,
        };
        if succeeded {
            finish(&strong, &key, at);
            return;
        }
        log(
            &strong.config.route,
            &format!(
                "Durable Object alarm of {} failed (retry {retry} of {MAX_RETRIES})",
                key.1
            ),
        );
        drop(strong);
        tokio::time::sleep(Duration::from_secs(1 << retry)).await;
    }
    if let Some(strong) = shared.upgrade() {
        finish(&strong, &key, at);
    }
}

/// The alarm set for `at` has run (or given up): deleted, unless the
/// handler set another.
fn finish(shared: &Shared, key: &(usize, String), at: i64) {
    {
        let mut set = shared
            .alarms
            .set
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if set.get(key) == Some(&at) {
            set.remove(key);
        }
    }
    if let Some(store) = shared.objects.get(key.0) {
        let store = store.clone();
        let object = key.1.clone();
        // SQLite off the async thread.
        let route = shared.config.route.clone();
        drop(shared.handle.spawn_blocking(move || {
            if let Err(e) = store.clear_alarm(&object, at) {
                log(
                    &route,
                    &format!("Durable Object alarm cannot be cleared: {e}"),
                );
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_of_scheduled_alarms_is_bounded() {
        let alarms = Alarms::default();
        {
            let mut set = alarms.set.lock().expect("lock");
            for n in 0..MAX_SCHEDULED {
                set.insert((0, n.to_string()), 1);
            }
        }
        // An object with an alarm may move it; a new one is refused.
        assert!(alarms.has_room(0, "7"));
        assert!(!alarms.has_room(0, "new"));
        assert!(alarms.is_current(&(0, "7".to_string()), 1));
        alarms.retire();
        assert!(!alarms.is_current(&(0, "7".to_string()), 1));
    }
}
