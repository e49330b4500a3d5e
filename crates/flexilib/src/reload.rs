//! Reloading while serving: library files and the config file are watched,
//! and SIGHUP re-reads the config.
//!
//! One thread, `flexilib-reload`, does all reloading, so reloads never race
//! each other. inotify events (see [`crate::file_watch`]) arrive on a
//! channel:
//!
//! * A configured library's file was completed (`IN_CLOSE_WRITE`), renamed
//!   into place (`IN_MOVED_TO`) or created (`IN_CREATE`, e.g. a hard link
//!   from `cargo build`): the library is reloaded at once. A bare create may
//!   still be being written; the load then fails, the old generation keeps
//!   serving, and the close-after-write that follows retries. No fixed
//!   debounce delays a good file.
//! * The config file changed: it is re-read once events have been quiet for
//!   [`CONFIG_DEBOUNCE`] (editors write it in several steps). SIGHUP
//!   re-reads it at once. A config file that is a symlink is also re-read
//!   when what it resolves to changes: an entry of its directory is
//!   created, renamed or removed and the link now leads elsewhere. That is
//!   how Kubernetes updates a mounted ConfigMap (`proxy.ini` →
//!   `..data/proxy.ini`, and `..data` → a timestamped directory, swapped
//!   by renaming a new `..data` over it), and how `ln -sfn` deploys work.
//!   The directory the link resolves to is watched too, so an edit of the
//!   file it leads to is seen.
//!
//! A config that fails to parse is logged with its file and line, and the
//! old route table keeps serving. A valid one replaces the table atomically;
//! libraries present in both keep their loaded generation, dropped ones are
//! unloaded when their last in-flight request ends.

use parking_lot::Mutex;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config;
use crate::file_watch::{Change, DirWatcher, FileEvent};
use crate::last_good::LastGood;
use crate::route::RouteTable;
use crate::service::Server;

/// Quiet time after the last config-file event before it is re-read.
pub const CONFIG_DEBOUNCE: Duration = Duration::from_millis(50);
/// When files were completed, everything is looked at again after this: a
/// library that still looks half written then is reported.
const WRITING_RECHECK: Duration =
    Duration::from_millis(crate::targets::native::library::WRITING_GRACE.as_millis() as u64 + 100);

/// What the reload thread is asked to do.
enum Request {
    /// A file-system event from the watcher.
    Changed(FileEvent),
    /// SIGHUP: re-read the config now.
    ReloadConfig,
    /// A target now depends on other files: watch their directories.
    Rewatch,
}

/// Handle to the reload thread.
#[derive(Clone)]
pub struct Reloader {
    requests: Sender<Request>,
}

impl Reloader {
    /// Starts watching the config file and every library it names.
    pub fn start(
        server: Arc<Server>,
        config_path: &Path,
        last_good: Option<LastGood>,
    ) -> std::io::Result<Self> {
        let config_path =
            std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
        let (requests, inbox) = channel();
        let events = requests.clone();
        let rewatch = Mutex::new(requests.clone());
        let _ = server.env.files_changed.set(Box::new(move || {
            let _ = rewatch.lock().send(Request::Rewatch);
        }));
        let watched_config = config_path.clone();
        let watcher = DirWatcher::start(move |event| {
            // Other files changing in a watched directory (a log next to
            // the config) are dropped here, not sent to the reload thread.
            if may_matter(&event, &watched_config) {
                // The receiver only goes away when the process exits.
                let _ = events.send(Request::Changed(event));
            }
        })?;
        let mut thread = ReloadThread {
            server,
            config_resolved: std::fs::canonicalize(&config_path).ok(),
            config_path,
            watcher,
            wanted: HashSet::new(),
            last_good,
        };
        thread.update_watches();
        std::thread::Builder::new()
            .name("flexilib-reload".into())
            .spawn(move || thread.run(&inbox))?;
        Ok(Self { requests })
    }

    /// Asks for the config to be re-read (SIGHUP).
    pub fn reload_config(&self) {
        let _ = self.requests.send(Request::ReloadConfig);
    }
}

struct ReloadThread {
    server: Arc<Server>,
    config_path: PathBuf,
    /// The file the config path led to when it was last read (through any
    /// symlinks).
    config_resolved: Option<PathBuf>,
    watcher: DirWatcher,
    /// The directories asked for at the last [`Self::update_watches`].
    wanted: HashSet<PathBuf>,
    /// Where every accepted config is kept for a restarted worker.
    last_good: Option<LastGood>,
}

impl ReloadThread {
    fn run(&mut self, inbox: &Receiver<Request>) {
        let mut config_due: Option<Instant> = None;
        // A library file that looked half written is looked at again once
        // its grace has passed (then a failure is logged).
        let mut recheck_due: Option<Instant> = None;
        loop {
            let due = match (config_due, recheck_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let request = match due {
                Some(due) => inbox.recv_timeout(due.saturating_duration_since(Instant::now())),
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let server = Arc::clone(&self.server);
            let stopped = server.reloads.lock();
            if *stopped {
                return;
            }
            match request {
                Ok(Request::Changed(event)) => {
                    if self.on_change(&event) {
                        config_due = Some(Instant::now() + CONFIG_DEBOUNCE);
                    }
                    if event.completes_a_file() {
                        recheck_due = Some(Instant::now() + WRITING_RECHECK);
                    }
                    // A rebuilt instance may depend on other files.
                    self.update_watches();
                }
                Ok(Request::Rewatch) => self.update_watches(),
                Ok(Request::ReloadConfig) => {
                    config_due = None;
                    self.reload_config("SIGHUP");
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if config_due.is_some_and(|due| due <= now) {
                        config_due = None;
                        self.reload_config("file change");
                    }
                    if recheck_due.is_some_and(|due| due <= now) {
                        recheck_due = None;
                        self.recheck_targets();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Reloads libraries the event completes; true if the config file changed.
    fn on_change(&self, event: &FileEvent) -> bool {
        if event.change == Change::Lost {
            // The kernel dropped events: look at everything again.
            self.recheck_targets();
            return true;
        }
        let path = &event.path;
        if *path == self.config_path || Some(path) == self.config_resolved.as_ref() {
            return true;
        }
        if path.parent() == self.config_path.parent()
            && event.renames_or_creates()
            && std::fs::canonicalize(&self.config_path).ok() != self.config_resolved
        {
            return true;
        }
        if event.completes_a_file() {
            for target in self.server.routes.load().targets() {
                target.file_changed(path);
            }
        }
        false
    }

    fn reload_config(&mut self, cause: &str) {
        self.config_resolved = std::fs::canonicalize(&self.config_path).ok();
        match config::load(&self.config_path) {
            Ok(config) => {
                let current = self.server.routes.load_full();
                let table = match RouteTable::build(
                    &config,
                    Some(&current),
                    &self.server.env.copies,
                ) {
                    Ok(table) => table,
                    Err(error) => {
                        tracing::error!(cause, %error, "config rejected; the previous routes keep serving");
                        self.server.metrics.config_reloaded(false);
                        return;
                    }
                };
                let routes = table.len();
                self.server.routes.store(Arc::new(table));
                self.server.metrics.config_reloaded(true);
                for warning in &config.warnings {
                    tracing::warn!("{warning}");
                }
                tracing::info!(cause, config = %self.config_path.display(), routes, "config reloaded");
                if let Some(last_good) = &self.last_good {
                    last_good.save(&config.text);
                }
                self.update_watches();
                // A library file may have changed where no watch could see it.
                self.recheck_targets();
            }
            Err(error) => {
                tracing::error!(cause, %error, "config rejected; the previous routes keep serving");
                self.server.metrics.config_reloaded(false);
            }
        }
    }

    /// Has every target look at its files again.
    fn recheck_targets(&self) {
        for target in self.server.routes.load().targets() {
            target.recheck();
        }
    }

    /// Watches the directories of the config file and of every library.
    fn update_watches(&mut self) {
        let mut wanted: HashSet<PathBuf> = HashSet::new();
        if let Some(dir) = self.config_path.parent() {
            wanted.insert(dir.to_path_buf());
        }
        // The directory a symlinked config file resolves to.
        if let Some(dir) = self.config_resolved.as_deref().and_then(Path::parent) {
            wanted.insert(dir.to_path_buf());
        }
        for target in self.server.routes.load().targets() {
            for path in target.watched_paths() {
                // A watched directory (a Lambda function's code) is watched itself.
                let dir = if path.is_dir() {
                    Some(path.as_path())
                } else {
                    path.parent()
                };
                if let Some(dir) = dir {
                    wanted.insert(dir.to_path_buf());
                }
            }
        }
        for dir in self.wanted.difference(&wanted) {
            self.watcher.unwatch(dir);
        }
        for dir in &wanted {
            // Also re-adds a directory that went away and came back.
            if self.watcher.is_watching(dir) {
                continue;
            }
            match self.watcher.watch(dir) {
                Ok(()) => tracing::debug!(dir = %dir.display(), "watching directory"),
                Err(error) => tracing::warn!(
                    dir = %dir.display(),
                    %error,
                    "cannot watch directory; library changes there are picked up on the next config reload (SIGHUP)"
                ),
            }
        }
        self.wanted = wanted;
    }
}

/// Whether the reload thread needs to see `event`: anything about the
/// config file, a file completed, or events lost.
fn may_matter(event: &FileEvent, config_path: &Path) -> bool {
    event.change == Change::Lost
        || event.completes_a_file()
        || event.path == config_path
        // A symlink on the way to the config may have been swapped.
        || (event.renames_or_creates() && event.path.parent() == config_path.parent())
}
