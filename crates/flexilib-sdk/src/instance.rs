//! Per-route instances (ABI 2): a type built once per route from the
//! route's options, handling every request of that route.

use std::path::{Path, PathBuf};

use flexilib_abi as abi;

use crate::call::{Answer, Call};
use crate::gauges::Gauges;
use crate::raw::{raw_bytes, raw_slice};
use crate::Request;

/// A per-route handler instance, exported with
/// [`export_instance!`](crate::export_instance).
///
/// The server builds one per route from the route's options
/// (`/w = lib/libmine.so key=value …` in `proxy.ini`) with
/// [`Instance::new`], and rebuilds it (a new value beside the old one) when
/// a file named with [`InstanceConfig::depends_on`] changes. It is shared by
/// every request of the route, on several threads at once: keep mutable
/// state behind locks or atomics.
pub trait Instance: Send + Sync + Sized + 'static {
    /// Builds the route's instance; the error becomes the route's 502 and
    /// is logged with the route.
    fn new(config: &InstanceConfig<'_>) -> Result<Self, String>;

    /// Handles one request: answer now ([`Response`](crate::Response) into
    /// [`Answer`]), later ([`Call::respond_later`]) or with a streamed body
    /// ([`Call::stream`]).
    fn handle(&self, request: &Request<'_>, call: Call) -> Answer;

    /// Reports numbers of the instance now (instances of your runtime
    /// alive, requests it queues, connections it holds) with
    /// [`Gauges::set`]; the server's admin listener (`ADMIN_ADDRESS`)
    /// exports each as the gauge `flexilib_library_<name>{route="…"}` in
    /// `/metrics`. The default reports nothing.
    ///
    /// Called on an admin thread of the server (never an I/O thread) each time `/metrics` is scraped,
    /// while requests run on the instance (never after it is dropped):
    /// read atomics, and take no lock a request may hold, so a scrape
    /// neither waits nor slows requests down. A panic here reports nothing.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use flexilib_sdk::{Answer, Call, Gauges, Instance, InstanceConfig, Request, Response};
    ///
    /// struct Pool {
    ///     busy: AtomicUsize,
    /// }
    ///
    /// impl Instance for Pool {
    ///     fn new(_config: &InstanceConfig<'_>) -> Result<Self, String> {
    ///         Ok(Pool { busy: AtomicUsize::new(0) })
    ///     }
    ///     fn handle(&self, _request: &Request<'_>, _call: Call) -> Answer {
    ///         Response::ok("hi").into()
    ///     }
    ///     fn gauges(&self, gauges: &mut Gauges<'_>) {
    ///         // Exported as flexilib_library_pool_busy_workers{route="…"}.
    ///         gauges.set(
    ///             "pool_busy_workers",
    ///             "Workers of the pool running a request",
    ///             self.busy.load(Ordering::Relaxed) as f64,
    ///         );
    ///     }
    /// }
    /// # let instance = Pool { busy: AtomicUsize::new(2) };
    /// # assert_eq!(
    /// #     flexilib_sdk::testing::gauges_of(&instance),
    /// #     [("pool_busy_workers", "Workers of the pool running a request", 2.0)]
    /// # );
    /// ```
    fn gauges(&self, gauges: &mut Gauges<'_>) {
        let _ = gauges;
    }
}

/// What an instance is built from: the route's options and where the
/// config file is.
pub struct InstanceConfig<'a> {
    raw: &'a abi::InstanceConfig,
    options: Vec<(&'a str, &'a str)>,
}

impl<'a> InstanceConfig<'a> {
    /// Wraps the host's config.
    ///
    /// # Safety
    /// Every pointer/length pair in `raw` must be valid for `'a`, and its
    /// callbacks callable with its `host_context` during `'a`.
    pub(crate) unsafe fn from_raw(raw: &'a abi::InstanceConfig) -> Self {
        // SAFETY: per this function's contract.
        let options = unsafe { raw_slice(raw.options, raw.options_len) }
            .iter()
            .filter_map(|option| {
                // SAFETY: per this function's contract, each option's pairs.
                let (key, value) = unsafe {
                    (
                        raw_bytes(option.key, option.key_len),
                        raw_bytes(option.value, option.value_len),
                    )
                };
                Some((
                    std::str::from_utf8(key).ok()?,
                    std::str::from_utf8(value).ok()?,
                ))
            })
            .collect();
        Self { raw, options }
    }

    /// The route's key as written in the config, e.g. `/w`.
    pub fn route(&self) -> &'a str {
        // SAFETY: valid for `'a` (see `from_raw`).
        std::str::from_utf8(unsafe { raw_bytes(self.raw.route, self.raw.route_len) }).unwrap_or("")
    }

    /// The directory of the config file.
    pub fn config_dir(&self) -> &'a Path {
        // SAFETY: valid for `'a` (see `from_raw`).
        let bytes = unsafe { raw_bytes(self.raw.config_dir, self.raw.config_dir_len) };
        Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes))
    }

    /// The value of option `key`, if given.
    pub fn option(&self, key: &str) -> Option<&'a str> {
        self.options
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| *value)
    }

    /// Every option, in config order.
    pub fn options(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.options.iter().copied()
    }

    /// `path` resolved against the config file's directory.
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        self.config_dir().join(path)
    }

    /// Names a file the instance read: when it changes, a new instance is
    /// built. Relative paths are relative to [`config_dir`](Self::config_dir).
    pub fn depends_on(&self, path: impl AsRef<Path>) {
        let bytes =
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::as_bytes(path.as_ref().as_os_str());
        // SAFETY: the host's callback, with its context, during the build;
        // the path is valid for the call.
        unsafe { (self.raw.depends_on)(self.raw.host_context, bytes.as_ptr().cast(), bytes.len()) };
    }

    /// Reads the file at `path` (relative to the config directory) as text
    /// and names it as a dependency, even when reading fails (so that
    /// creating or fixing it rebuilds the instance).
    pub fn read_file(&self, path: impl AsRef<Path>) -> std::io::Result<String> {
        self.depends_on(path.as_ref());
        std::fs::read_to_string(self.resolve(path))
    }

    /// Reports why the instance cannot be built.
    pub(crate) fn fail(&self, message: &str) {
        // SAFETY: as for `depends_on`.
        unsafe {
            (self.raw.fail)(
                self.raw.host_context,
                message.as_ptr().cast(),
                message.len(),
            )
        };
    }
}
