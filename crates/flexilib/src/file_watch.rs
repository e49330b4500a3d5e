//! Directory watches for the reload thread: inotify with a narrow mask.
//!
//! Only the events that end a change are asked for: a file closed after
//! writing (`IN_CLOSE_WRITE`), an entry created, renamed in or out, or
//! removed, and the watched directory itself going away. Opens and every
//! single `write(2)` (`IN_OPEN`, `IN_MODIFY`) are not: an access log written
//! next to the config, 64 KiB at a time, would otherwise wake the watching
//! thread once per write, on the CPU the server works on. (The `notify`
//! crate this replaces watched with a fixed mask that includes both.)
//!
//! One thread, `flexilib-watch`, blocks reading the inotify descriptor and
//! hands each event, with its full path, to a callback.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};

/// What happened to a path in a watched directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A file opened for writing was closed.
    Written,
    /// An entry was created (a new file, a hard link, a symlink, a directory).
    Created,
    /// An entry was renamed into the directory (or within it: its new name).
    MovedIn,
    /// An entry was renamed away (its old name).
    MovedOut,
    /// An entry was removed, or the watched directory itself went away.
    Removed,
    /// The kernel's queue overflowed: events were lost, look at everything.
    Lost,
}

/// One change; `path` is the entry in its directory (the directory itself
/// for [`Change::Removed`] of a watched directory; empty for
/// [`Change::Lost`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    pub path: PathBuf,
    pub change: Change,
}

impl FileEvent {
    /// The change ends the writing of a file: closed after writing, created
    /// (e.g. a hard link from `cargo build`) or renamed into place.
    pub fn completes_a_file(&self) -> bool {
        matches!(
            self.change,
            Change::Written | Change::Created | Change::MovedIn
        )
    }

    /// The change adds, renames or removes a directory entry.
    pub fn renames_or_creates(&self) -> bool {
        matches!(
            self.change,
            Change::Created | Change::MovedIn | Change::MovedOut | Change::Removed
        )
    }
}

/// The events asked for on every watched directory.
const MASK: WatchMask = WatchMask::CLOSE_WRITE
    .union(WatchMask::CREATE)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::DELETE)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);

/// Room for a few dozen events per read.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Watched directories by watch descriptor.
type Dirs = Arc<Mutex<HashMap<WatchDescriptor, PathBuf>>>;

/// Adds and removes directory watches; the events go to the callback given
/// to [`DirWatcher::start`].
pub struct DirWatcher {
    watches: Watches,
    dirs: Dirs,
}

impl DirWatcher {
    /// Starts the watching thread; `on_event` runs on it for every event.
    pub fn start(mut on_event: impl FnMut(FileEvent) + Send + 'static) -> std::io::Result<Self> {
        let mut inotify = Inotify::init()?;
        let watches = inotify.watches();
        let dirs: Dirs = Arc::default();
        let seen = Arc::clone(&dirs);
        std::thread::Builder::new()
            .name("flexilib-watch".into())
            .spawn(move || {
                let mut buffer = vec![0u8; READ_BUFFER_BYTES];
                loop {
                    let events = match inotify.read_events_blocking(&mut buffer) {
                        Ok(events) => events,
                        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(error) => {
                            tracing::warn!(%error, "file watch stopped; library and config changes are picked up on SIGHUP");
                            return;
                        }
                    };
                    for event in events {
                        if let Some(event) = translate(&seen, &event.wd, event.mask, event.name) {
                            on_event(event);
                        }
                    }
                }
            })?;
        Ok(Self { watches, dirs })
    }

    /// Watches `dir` (not recursively); nothing if it is watched already.
    pub fn watch(&mut self, dir: &Path) -> std::io::Result<()> {
        // Held while adding, so that the watching thread cannot read an
        // event of the new descriptor before its directory is known.
        let mut dirs = self.dirs.lock();
        let descriptor = self.watches.add(dir, MASK)?;
        dirs.insert(descriptor, dir.to_path_buf());
        Ok(())
    }

    /// Stops watching `dir`.
    pub fn unwatch(&mut self, dir: &Path) {
        let mut dirs = self.dirs.lock();
        let found = dirs
            .iter()
            .find(|(_, watched)| watched.as_path() == dir)
            .map(|(descriptor, _)| descriptor.clone());
        if let Some(descriptor) = found {
            dirs.remove(&descriptor);
            // Fails only if the kernel already dropped it (directory gone).
            let _ = self.watches.remove(descriptor);
        }
    }

    /// Whether `dir` is watched now (a directory that was removed or renamed
    /// away is not, even if it was asked for).
    pub fn is_watching(&self, dir: &Path) -> bool {
        self.dirs.lock().values().any(|watched| watched == dir)
    }
}

/// The event as a [`FileEvent`], `None` for what the reload thread does not
/// need (a removed watch's last word).
fn translate(
    dirs: &Dirs,
    descriptor: &WatchDescriptor,
    mask: EventMask,
    name: Option<&OsStr>,
) -> Option<FileEvent> {
    if mask.contains(EventMask::Q_OVERFLOW) {
        return Some(FileEvent {
            path: PathBuf::new(),
            change: Change::Lost,
        });
    }
    if mask.contains(EventMask::IGNORED) {
        // The watch ended (removed by us or with its directory).
        dirs.lock().remove(descriptor);
        return None;
    }
    let dir = dirs.lock().get(descriptor).cloned()?;
    let change = if mask.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
        return Some(FileEvent {
            path: dir,
            change: Change::Removed,
        });
    } else if mask.contains(EventMask::CLOSE_WRITE) {
        Change::Written
    } else if mask.contains(EventMask::CREATE) {
        Change::Created
    } else if mask.contains(EventMask::MOVED_TO) {
        Change::MovedIn
    } else if mask.contains(EventMask::MOVED_FROM) {
        Change::MovedOut
    } else if mask.contains(EventMask::DELETE) {
        Change::Removed
    } else {
        return None;
    };
    let path = match name {
        Some(name) => dir.join(name),
        None => dir,
    };
    Some(FileEvent { path, change })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Receiver};
    use std::time::Duration;

    /// A fresh directory under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flexilib-watch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    fn next(events: &Receiver<FileEvent>) -> Option<FileEvent> {
        events.recv_timeout(Duration::from_secs(5)).ok()
    }

    #[test]
    fn completed_renamed_and_removed_files_are_seen_writes_are_not() {
        let dir = scratch("files");
        let (send, events) = channel();
        let mut watcher = DirWatcher::start(move |event| {
            let _ = send.send(event);
        })
        .expect("watcher");
        watcher.watch(dir.as_path()).expect("watch");
        assert!(watcher.is_watching(dir.as_path()));

        // A file kept open and written to many times: no event until closed.
        let log = dir.as_path().join("access.log");
        let mut file = std::fs::File::create(&log).expect("create");
        assert_eq!(
            next(&events),
            Some(FileEvent {
                path: log.clone(),
                change: Change::Created
            })
        );
        for _ in 0..100 {
            std::io::Write::write_all(&mut file, b"line\n").expect("write");
        }
        assert!(events.recv_timeout(Duration::from_millis(200)).is_err());
        drop(file);
        assert_eq!(next(&events).map(|e| e.change), Some(Change::Written));

        let renamed = dir.as_path().join("proxy.ini");
        std::fs::rename(&log, &renamed).expect("rename");
        assert_eq!(next(&events).map(|e| e.change), Some(Change::MovedOut));
        let moved_in = next(&events).expect("moved in");
        assert_eq!(
            (moved_in.path, moved_in.change),
            (renamed.clone(), Change::MovedIn)
        );
        assert!(FileEvent {
            path: renamed.clone(),
            change: Change::MovedIn
        }
        .completes_a_file());

        std::fs::remove_file(&renamed).expect("remove");
        assert_eq!(next(&events).map(|e| e.change), Some(Change::Removed));

        watcher.unwatch(dir.as_path());
        assert!(!watcher.is_watching(dir.as_path()));
        std::fs::write(dir.as_path().join("after"), b"x").expect("write after");
        assert!(events.recv_timeout(Duration::from_millis(200)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_watched_directory_that_goes_away_is_reported_and_no_longer_watched() {
        let dir = scratch("gone").join("functions");
        std::fs::create_dir(&dir).expect("mkdir");
        let (send, events) = channel();
        let mut watcher = DirWatcher::start(move |event| {
            let _ = send.send(event);
        })
        .expect("watcher");
        watcher.watch(&dir).expect("watch");
        std::fs::remove_dir(&dir).expect("rmdir");
        let gone = next(&events).expect("event");
        assert_eq!(
            (gone.path.as_path(), gone.change),
            (dir.as_path(), Change::Removed)
        );
        // The kernel's IN_IGNORED follows; then the directory is not watched.
        for _ in 0..50 {
            if !watcher.is_watching(&dir) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("a removed directory still counts as watched");
    }
}
