//! The housekeeping thread: once a second it flushes the access log and,
//! when connections have parked, gives their freed buffers back to the OS.

use std::sync::Arc;
use std::time::Duration;

use crate::access_log::AccessLog;
use crate::{conn, os};

/// How often housekeeping runs.
const PERIOD: Duration = Duration::from_secs(1);
/// Parked connections (about 16 KiB of buffers each) worth a trim.
const PARKED_BEFORE_TRIM: usize = 32;

/// Starts the thread.
pub fn start(log: Arc<AccessLog>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("flexilib-housekeeping".into())
        .spawn(move || {
            let mut parked = 0;
            loop {
                std::thread::sleep(PERIOD);
                log.flush();
                parked += conn::take_parked_count();
                if parked >= PARKED_BEFORE_TRIM {
                    parked = 0;
                    os::release_free_memory();
                }
            }
        })?;
    Ok(())
}
