//! The housekeeping thread: it writes the access log out (once a second, or
//! when woken by a full buffer) and, when connections have parked, gives
//! their freed buffers back to the OS (at most once a second).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access_log::AccessLog;
use crate::conn::ConnStats;
use crate::os;

/// How often housekeeping runs.
const PERIOD: Duration = Duration::from_secs(1);
/// Parked connections (about 16 KiB of buffers each) worth a trim.
const PARKED_BEFORE_TRIM: usize = 32;

/// Starts the thread.
pub fn start(log: Arc<AccessLog>, connections: Arc<ConnStats>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("flexilib-housekeeping".into())
        .spawn(move || {
            log.set_writer_thread();
            let mut parked = 0;
            let mut last_trim = Instant::now();
            loop {
                // Woken early when the log buffer fills up.
                std::thread::park_timeout(PERIOD);
                log.flush();
                let newly_parked = connections.take_parked_count();
                if newly_parked > 0 {
                    tracing::debug!(parked = newly_parked, "connections parked");
                }
                parked += newly_parked;
                if parked >= PARKED_BEFORE_TRIM && last_trim.elapsed() >= PERIOD {
                    parked = 0;
                    last_trim = Instant::now();
                    os::release_free_memory();
                }
            }
        })?;
    Ok(())
}
