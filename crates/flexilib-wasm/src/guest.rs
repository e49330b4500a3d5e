//! One request's guest state (the `T` of its `Store`): WASI context (only
//! what the route grants), `wasi:http` context with the outbound allow
//! list, and the limits (memory, CPU time).

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::config::{Outbound, RouteConfig};
use crate::spin::{SpinContext, SpinRequest};

/// How often the epoch advances while a guest runs: the granularity of
/// `cpu_ms`.
pub const TICK: std::time::Duration = std::time::Duration::from_millis(2);

/// Bytes of a request's guest stderr kept for the log.
const STDERR_BYTES: usize = 64 * 1024;
/// Most table elements a guest may have (per table).
const TABLE_ELEMENTS: usize = 1 << 20;

/// A limit a guest ran into (the error its trap carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// It ran longer than `cpu_ms`.
    #[error("the guest ran past its time limit (cpu_ms={0})")]
    Cpu(u64),
    /// It tried to grow a memory past `memory_mb`.
    #[error("the guest tried to grow its memory to {desired} bytes, past its limit (memory_mb={limit_mb})")]
    Memory {
        /// Bytes asked for.
        desired: usize,
        /// The limit in MiB.
        limit_mb: usize,
    },
    /// It tried to grow a table past the host's bound.
    #[error("the guest tried to grow a table to {0} elements")]
    Table(usize),
}

/// Memory and table limits of one store.
pub struct Limits {
    memory_bytes: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(LimitExceeded::Memory {
                desired,
                limit_mb: self.memory_bytes >> 20,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(LimitExceeded::Table(desired)));
        }
        Ok(true)
    }
}

/// `wasi:http` hooks: outbound requests only to the route's allowed hosts.
pub struct Hooks {
    outbound: Arc<[Outbound]>,
}

impl Hooks {
    fn allowed(&self, uri: &hyper::Uri) -> bool {
        let Some(host) = uri.host() else {
            return false;
        };
        let tls = uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS);
        self.outbound
            .iter()
            .any(|entry| entry.allows(host, uri.port_u16(), tls))
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    hyper::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        if !self.allowed(request.uri()) {
            // Refused at once, with the error code wasi:http has for it.
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// The data of one request's store.
pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Handles of the guest's resources (WASI's, `wasi:http`'s, Spin's).
    pub(crate) table: ResourceTable,
    /// Spin's interfaces, for a component of a Spin application.
    pub(crate) spin: Option<SpinRequest>,
    hooks: Hooks,
    /// Memory and table limits.
    pub limits: Limits,
    /// Epoch ticks the guest has run through.
    ticks: u64,
    /// Ticks it may run through.
    max_ticks: u64,
    cpu_ms: u64,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Why a guest's context could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {dir} for the guest: {message}", dir = .dir.display())]
pub struct PreopenError {
    dir: std::path::PathBuf,
    message: String,
}

impl GuestState {
    /// A fresh state for one request on a route: nothing granted but what
    /// its options (and, for a Spin component, its manifest) grant.
    /// Returns the state and the guest's stderr.
    pub fn new(
        config: &RouteConfig,
        outbound: &Arc<[Outbound]>,
        spin: Option<Arc<SpinContext>>,
    ) -> Result<(Self, MemoryOutputPipe), PreopenError> {
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let mut wasi = WasiCtxBuilder::new();
        // No stdin, stdout discarded (the server's stdout is the access
        // log), stderr kept for the log; no sockets, no name lookups.
        wasi.stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (name, value) in &config.env {
            wasi.env(name, value);
        }
        for dir in &config.dirs {
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| PreopenError {
                    dir: dir.host.clone(),
                    message: format!("{e:#}"),
                })?;
        }
        let tick_ms = TICK.as_millis().max(1) as u64;
        let state = GuestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            spin: spin.map(|context| SpinRequest {
                context,
                open_stores: 0,
            }),
            hooks: Hooks {
                outbound: outbound.clone(),
            },
            limits: Limits {
                memory_bytes: config.memory_bytes,
            },
            ticks: 0,
            max_ticks: config.cpu_ms.div_ceil(tick_ms),
            cpu_ms: config.cpu_ms,
        };
        Ok((state, stderr))
    }

    /// The epoch callback: each call is a tick the guest was running
    /// through (the deadline is one tick ahead), so the guest's running
    /// time is counted, not the time it waited on the host. Past
    /// `cpu_ms` it traps; otherwise it yields to the runtime, so one busy
    /// guest does not hold a thread from the others.
    pub fn on_epoch(&mut self) -> wasmtime::Result<UpdateDeadline> {
        self.ticks += 1;
        if self.ticks > self.max_ticks {
            return Err(wasmtime::Error::new(LimitExceeded::Cpu(self.cpu_ms)));
        }
        Ok(UpdateDeadline::Yield(1))
    }
}
