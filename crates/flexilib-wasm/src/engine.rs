//! The process-wide host: one Wasmtime [`Engine`] (pooling allocator,
//! epoch interruption), the [`Linker`]s with WASI 0.2 and `wasi:http` (and
//! one with Spin's interfaces too), the tokio runtime guests run on, and the
//! epoch ticker thread.
//!
//! One engine for every route: compiled artifacts are compatible across
//! routes, and the pool of instance slots (and their virtual-memory
//! reservation) is paid once. Per-route limits (memory, CPU, instances)
//! are enforced per store and per route, below the pool's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::MAX_MEMORY_MB;
use crate::guest::{GuestState, TICK};

/// Component instances alive at once in the whole process (every route).
pub const POOL_INSTANCES: u32 = 1000;
/// Bytes of a pooled memory slot kept resident between instances.
const KEEP_RESIDENT: usize = 1 << 20;

/// Why the host could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// Wasmtime refused the configuration (or the machine the pool).
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// WASI could not be added to the linker.
    #[error("cannot set up WASI: {0}")]
    Linker(String),
    /// The guests' threads could not be started.
    #[error("cannot start the WebAssembly threads: {0}")]
    Runtime(String),
}

/// The host every route shares.
pub struct Host {
    /// The engine (pooling allocator, epoch interruption).
    pub engine: Engine,
    /// WASI 0.2 (CLI, clocks, random, filesystem, sockets: all denied
    /// unless granted per route) and `wasi:http`.
    pub linker: Linker<GuestState>,
    /// The same with Spin's interfaces (key-value, variables), for the
    /// components of Spin applications.
    pub spin_linker: Linker<GuestState>,
    /// Where guests run.
    pub runtime: tokio::runtime::Runtime,
    ticker: Thread,
}

/// Requests running guests right now; the ticker sleeps while it is 0.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// The engine's configuration. Everything that shapes compiled code is
/// here, so an artifact compiled by one process is usable by the next.
fn engine_config() -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size((MAX_MEMORY_MB as usize) << 20)
        // Reset what a guest touched by rewriting it (only the resident pages:
        // PAGEMAP_SCAN, Linux 6.7+) instead of madvise: no page faults on the
        // next instance, no TLB shootdowns. Per warm slot at most this much
        // stays resident.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT / 16)
        .async_stack_keep_resident(KEEP_RESIDENT / 16)
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// The epoch ticker: advances the engine's epoch every [`TICK`] while any
/// guest runs, and parks otherwise.
fn tick(engine: Engine) {
    loop {
        if RUNNING.load(Ordering::Acquire) == 0 {
            std::thread::park_timeout(Duration::from_millis(500));
            continue;
        }
        std::thread::sleep(TICK);
        engine.increment_epoch();
    }
}

fn build() -> Result<Host, HostError> {
    let engine = Engine::new(&engine_config()).map_err(|e| HostError::Engine(format!("{e:#}")))?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| HostError::Linker(format!("{e:#}")))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| HostError::Linker(format!("{e:#}")))?;
    let mut spin_linker = linker.clone();
    crate::spin::add_to_linker(&mut spin_linker)
        .map_err(|e| HostError::Linker(format!("{e:#}")))?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("flexilib-wasm")
        .enable_all()
        .build()
        .map_err(|e| HostError::Runtime(e.to_string()))?;
    let ticker_engine = engine.clone();
    let ticker = std::thread::Builder::new()
        .name("flexilib-wasm-epoch".into())
        .spawn(move || tick(ticker_engine))
        .map_err(|e| HostError::Runtime(e.to_string()))?;
    Ok(Host {
        engine,
        linker,
        spin_linker,
        runtime,
        ticker: ticker.thread().clone(),
    })
}

/// The host, set up on first use. The library is never unloaded (it is
/// linked `-z nodelete`), so the ticker and the runtime's threads live as
/// long as the process.
pub fn host() -> Result<&'static Host, HostError> {
    static HOST: OnceLock<Result<Host, HostError>> = OnceLock::new();
    HOST.get_or_init(build).as_ref().map_err(Clone::clone)
}

/// Counts a guest as running (the epoch advances) until dropped.
pub struct Running(());

impl Host {
    /// Marks a guest as running, waking the ticker if it slept.
    pub fn running(&self) -> Running {
        if RUNNING.fetch_add(1, Ordering::AcqRel) == 0 {
            self.ticker.unpark();
        }
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}
