//! The runtime clients FlexiLib ships (`runtimes/` in the crate, compiled
//! into the binary): a Python and a Node program, standard library only,
//! that load a handler and loop on the Runtime API as AWS's `awslambdaric`
//! and `aws-lambda-ric` do. They are written once, on first use, into a
//! private directory of the worker (`flexilib-PID-N`, mode 0700), removed at
//! exit.

use std::path::PathBuf;
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::config::Language;
use crate::private_dirs::PrivateDir;

const PYTHON: &str = include_str!("../../../runtimes/python/flexilib_runtime.py");
const NODE: &str = include_str!("../../../runtimes/node/flexilib_runtime.mjs");

static DIR: OnceLock<PrivateDir> = OnceLock::new();
/// Held while the directory is being made (a failure is retried next time).
static CREATING: Mutex<()> = Mutex::new(());

/// The path of `client`'s program, written on first use.
pub fn script(client: Language) -> std::io::Result<PathBuf> {
    let dir = match DIR.get() {
        Some(dir) => dir,
        None => {
            let _creating = CREATING.lock();
            match DIR.get() {
                Some(dir) => dir,
                None => {
                    let dir = crate::private_dirs::create_in(&crate::private_dirs::base())?;
                    std::fs::write(dir.path().join("flexilib_runtime.py"), PYTHON)?;
                    std::fs::write(dir.path().join("flexilib_runtime.mjs"), NODE)?;
                    DIR.get_or_init(|| dir)
                }
            }
        }
    };
    Ok(dir.path().join(match client {
        Language::Python => "flexilib_runtime.py",
        Language::Node => "flexilib_runtime.mjs",
    }))
}

/// Removes the directory, if it was made (worker exit).
pub fn remove() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir.path());
    }
}
