//! Route targets: where a matched request is sent. Each kind is one module;
//! [`Target`] is the only interface the rest of the server sees.
//!
//! * [`native`] — shared libraries called through the C ABI (a target that
//!   computes in process).
//! * [`upstream`] — other HTTP servers, as a reverse proxy (a target that
//!   waits on other processes).
//! * [`lambda`] — AWS Lambda functions run as local processes (a target
//!   that waits on other processes).
//! * [`sam`] — an AWS SAM application: API Gateway's routes in front of
//!   [`lambda`] functions.
//! * [`static_files`] — a directory of files (in-process work that blocks
//!   on the file system: done on the I/O thread's blocking pool).
//!
//! A kind provides: how to build it from its [`TargetSpec`], how to serve a
//! request ([`Target::serve`]), and which files it depends on and what to do
//! when one changes ([`Target::watched_paths`], [`Target::file_changed`]).
//! The [`registry`] keeps live targets across config reloads, keyed by spec.

pub mod lambda;
pub mod native;
pub mod registry;
pub mod sam;
pub mod static_files;
pub mod upstream;
pub mod whole_body;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::http1::encode::EncodedFields;
use crate::http1::RequestBody;
use hyper::{Request, Response};

use crate::access_log::TargetNote;
use crate::arena::ArenaUsage;
use crate::config::TargetSpec;
use crate::handlers::HandlerSlots;
use crate::respond::ReplyBody;
use lambda::LambdaFunction;
use native::{LibraryRoute, NativeLibrary};
use sam::SamApplication;
use static_files::StaticDir;
use upstream::{ProxyClient, UpstreamGroup};

/// A live target of one or more routes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A native shared library (and, for ABI-2 libraries, the route's instance).
    Library(Arc<LibraryRoute>),
    /// Upstream HTTP servers.
    Upstream(Arc<UpstreamGroup>),
    /// A Lambda function and its instances.
    Lambda(Arc<LambdaFunction>),
    /// A SAM application: its routes and functions.
    Sam(Arc<SamApplication>),
    /// A directory of static files.
    Static(Arc<StaticDir>),
}

/// What every target kind may need from the server to serve a request.
pub struct TargetEnv {
    /// Limits concurrent library calls.
    pub handlers: HandlerSlots,
    /// The upstream connection pool.
    pub proxy: ProxyClient,
    /// Largest accepted request body (for targets that read it whole).
    pub max_body_bytes: u64,
    /// Time allowed to receive a whole request body.
    pub body_timeout: Duration,
    /// Time a library may take to complete a request it answered "pending".
    pub completion_timeout: Duration,
    /// The private directory library generations are copied into.
    pub copies: Arc<native::copy::CopyDir>,
    /// Tells the file watcher that a target now depends on other files
    /// (set by the reload thread when it starts).
    pub files_changed: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl TargetEnv {
    /// A target built while serving depends on new files: have them watched.
    pub fn watch_new_files(&self) {
        if let Some(notify) = self.files_changed.get() {
            notify();
        }
    }
}

/// The request's context beyond the request itself.
#[derive(Debug, Clone, Copy)]
pub struct CallInfo<'a> {
    /// The client IP.
    pub peer_ip: &'a str,
    /// The path prefix of the route that matched.
    pub route_prefix: &'a str,
    /// The client came over TLS.
    pub secure: bool,
}

/// A target's answer, with what it adds to the access-log line.
pub struct Served {
    /// The response (its body may still be streaming).
    pub response: Response<ReplyBody>,
    /// Arena use (library targets).
    pub usage: ArenaUsage,
    /// Who answered and how long it took (targets that wait on others).
    pub note: Option<TargetNote>,
    /// Response fields in wire form, written after the response's own.
    pub fields: Option<EncodedFields>,
}

impl Served {
    /// A response with nothing to add to the log line.
    pub fn plain(response: Response<ReplyBody>) -> Self {
        Self {
            response,
            usage: ArenaUsage::default(),
            note: None,
            fields: None,
        }
    }
}

impl Target {
    /// A new, idle target for `spec` (nothing is loaded or connected yet);
    /// `library` gives the shared library object for a path.
    pub fn new(spec: &TargetSpec, library: impl FnOnce(&Path) -> Arc<NativeLibrary>) -> Self {
        match spec {
            TargetSpec::Library(spec) => Self::Library(Arc::new(LibraryRoute::new(
                library(&spec.path),
                spec.clone(),
            ))),
            TargetSpec::Upstream(spec) => Self::Upstream(UpstreamGroup::start(spec)),
            TargetSpec::Lambda(spec) => Self::Lambda(Arc::new(LambdaFunction::new(spec))),
            TargetSpec::Sam(spec) => Self::Sam(Arc::new(SamApplication::new(spec))),
            TargetSpec::Static(spec) => Self::Static(Arc::new(StaticDir::new(spec))),
        }
    }

    /// Readies a new target whose problems are config errors (a library
    /// given options it cannot take); the message says what is wrong.
    pub fn prepare(&self) -> Result<(), String> {
        match self {
            Self::Library(route) if !route.spec.options.is_empty() => {
                route.prepare().map_err(|error| error.to_string())
            }
            Self::Sam(app) => app.prepare(),
            Self::Library(_) | Self::Upstream(_) | Self::Lambda(_) | Self::Static(_) => Ok(()),
        }
    }

    /// Serves one request.
    pub async fn serve(
        &self,
        env: &TargetEnv,
        request: Request<RequestBody>,
        call: CallInfo<'_>,
    ) -> Served {
        // The targets that wait on other processes have large futures; boxed,
        // they do not make every connection's task as large as theirs (their
        // own cost dwarfs the allocation). Library calls stay inline.
        match self {
            Self::Library(route) => native::serve(env, route, request).await,
            Self::Upstream(group) => Box::pin(upstream::serve(env, group, request, call)).await,
            Self::Lambda(function) => Box::pin(lambda::serve(env, function, request, call)).await,
            Self::Sam(app) => Box::pin(sam::serve(env, app, request, call)).await,
            Self::Static(dir) => Box::pin(static_files::serve(dir, request, call)).await,
        }
    }

    /// Files whose changes the target wants to hear about.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        match self {
            Self::Library(route) => route.watched_paths(),
            Self::Upstream(_) | Self::Static(_) => Vec::new(),
            Self::Lambda(function) => function.watched_path().into_iter().collect(),
            Self::Sam(app) => app.watched_paths(),
        }
    }

    /// `path` was written, created or renamed into place.
    pub fn file_changed(&self, path: &Path) {
        match self {
            Self::Library(route) => route.file_changed(path),
            Self::Lambda(function) => function.file_changed(path),
            Self::Sam(app) => app.file_changed(path),
            Self::Upstream(_) | Self::Static(_) => {}
        }
    }

    /// Looks at every watched file again (after a config reload, or when
    /// the kernel dropped file events).
    pub fn recheck(&self) {
        match self {
            Self::Library(route) => route.recheck(),
            Self::Lambda(function) => function.recheck(),
            Self::Sam(app) => app.recheck(),
            Self::Upstream(_) | Self::Static(_) => {}
        }
    }

    /// The same live target (not merely an equal one).
    pub fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Library(a), Self::Library(b)) => Arc::ptr_eq(a, b),
            (Self::Upstream(a), Self::Upstream(b)) => Arc::ptr_eq(a, b),
            (Self::Lambda(a), Self::Lambda(b)) => Arc::ptr_eq(a, b),
            (Self::Sam(a), Self::Sam(b)) => Arc::ptr_eq(a, b),
            (Self::Static(a), Self::Static(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The Lambda functions the target runs (the Invoke API finds them by name).
    pub fn functions(&self) -> Vec<Arc<LambdaFunction>> {
        match self {
            Self::Lambda(function) => vec![Arc::clone(function)],
            Self::Sam(app) => app.functions(),
            Self::Library(_) | Self::Upstream(_) | Self::Static(_) => Vec::new(),
        }
    }

    /// Short name for diagnostics: the library file, or `upstream`.
    #[cfg(test)]
    pub fn label(&self) -> &str {
        match self {
            Self::Library(route) => route
                .spec
                .path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("?"),
            Self::Upstream(_) => "upstream",
            Self::Lambda(function) => &function.spec().name,
            Self::Sam(_) => "sam",
            Self::Static(_) => "static",
        }
    }
}
