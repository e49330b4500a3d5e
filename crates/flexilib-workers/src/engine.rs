//! One JS thread: a QuickJS runtime and context with the worker's module
//! loaded, and its event loop. Requests, finished host operations (fetch,
//! KV, body chunks, room to write) and shutdown arrive as messages; timers
//! are kept here. Every stretch of JavaScript (a "turn": one message or
//! timer, then the microtasks it queued) runs under the request's CPU
//! budget, enforced by the runtime's interrupt handler.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flexilib_sdk::{BodyWriter, Responder, Response, WriteError};
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::WriteOptions;
use rquickjs::{
    Array, Context, Ctx, Exception, Function, Module, Object, Runtime, TypedArray, Value,
};

use crate::config::WorkerConfig;
use crate::fetch::{BodyRx, FetchHead, HttpClient, Redirect};
use crate::kv::KvStore;
use crate::web;

const PRELUDE: &str = include_str!("js/prelude.js");

/// How long a retired instance's threads may finish `waitUntil` work.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What a route's JS threads share.
pub struct Shared {
    /// The resolved configuration.
    pub config: WorkerConfig,
    /// KV namespaces, by binding index.
    pub kv: Vec<Arc<KvStore>>,
    /// Outbound HTTP.
    pub client: HttpClient,
    tokio: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl Shared {
    /// Opens the KV stores and starts the host-side runtime.
    pub fn new(config: WorkerConfig) -> Result<Shared, String> {
        let kv = config
            .kv
            .iter()
            .map(|ns| KvStore::open(&config.state_dir, &ns.id).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("worker-io")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the worker's I/O runtime: {e}"))?;
        let handle = tokio.handle().clone();
        let client = {
            let _guard = handle.enter();
            crate::fetch::client()
        };
        Ok(Shared {
            config,
            kv,
            client,
            tokio: Some(tokio),
            handle,
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(runtime) = self.tokio.take() {
            runtime.shutdown_background();
        }
    }
}

/// A request handed to a JS thread.
pub struct Incoming {
    /// Method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// name, value, name, value, …
    pub headers: Vec<String>,
    /// The whole body.
    pub body: Vec<u8>,
    /// Answers it.
    pub responder: Responder,
    /// `Some(cron)` for `/__scheduled`.
    pub scheduled: Option<String>,
}

/// A message to a JS thread.
pub enum Msg {
    /// A request.
    Request(Box<Incoming>),
    /// A host operation finished.
    Done(u64, OpResult),
    /// The instance is retired: finish what is running, then exit.
    Shutdown,
}

/// The outcome of a host operation.
pub enum OpResult {
    /// Resolve with this.
    Ok(Payload),
    /// Reject with an error of this class and message.
    Err(&'static str, String),
}

/// What an operation resolves with.
pub enum Payload {
    /// `undefined`.
    Undefined,
    /// `null`.
    Null,
    /// A string.
    Text(String),
    /// `[Uint8Array, metadata JSON | null]`, a KV value.
    Entry(Vec<u8>, Option<String>),
    /// A fetch response head.
    Head(FetchHead),
    /// A body chunk (`None` at the end), with the body's channel to keep.
    Chunk(u64, BodyRx, Option<Bytes>),
}

/// Why a thread's module could not be loaded, with the files it read.
pub type Ready = (Vec<PathBuf>, Result<(), String>);

enum Answer {
    Pending(Responder),
    Streaming(BodyWriter),
}

struct Call {
    answer: Answer,
    cpu: Duration,
}

struct State {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    calls: HashMap<u64, Call>,
    next_call: u64,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_owner: HashMap<u64, u64>,
    ops: HashMap<u64, u64>,
    bodies: HashMap<u64, BodyRx>,
    next_body: u64,
    current: u64,
    started: Instant,
}

impl State {
    fn idle(&self) -> bool {
        self.calls.is_empty() && self.ops.is_empty() && self.timer_owner.is_empty()
    }

    fn pop_due(&mut self, now: Instant) -> Option<(u64, u64)> {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                return None;
            }
            self.timers.pop();
            if let Some(owner) = self.timer_owner.remove(&id) {
                return Some((id, owner));
            }
        }
        None
    }

    fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Runs `future` on the I/O runtime; its result settles op `op`.
    fn spawn(&mut self, op: u64, future: impl Future<Output = OpResult> + Send + 'static) {
        self.ops.insert(op, self.current);
        let tx = self.tx.clone();
        self.shared.handle.spawn(async move {
            let result = future.await;
            let _ = tx.send(Msg::Done(op, result));
        });
    }

    /// Runs blocking `work` (SQLite) off the JS thread; its result settles op `op`.
    fn spawn_blocking(&mut self, op: u64, work: impl FnOnce() -> OpResult + Send + 'static) {
        self.ops.insert(op, self.current);
        let tx = self.tx.clone();
        self.shared.handle.spawn_blocking(move || {
            let _ = tx.send(Msg::Done(op, work()));
        });
    }
}

/// The CPU deadline of the running turn, checked by the interrupt handler.
#[derive(Default)]
struct Limits {
    deadline: Cell<Option<Instant>>,
    fired: Cell<bool>,
}

impl Limits {
    fn check(&self) -> bool {
        match self.deadline.get() {
            Some(deadline) if Instant::now() >= deadline => {
                self.fired.set(true);
                true
            }
            _ => false,
        }
    }
}

/// Resolves relative imports against the importing module's path.
struct FsResolver;

impl Resolver for FsResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        if !(name.starts_with("./") || name.starts_with("../") || name.starts_with('/')) {
            return Err(rquickjs::Error::new_resolving_message(
                base,
                name,
                "only relative module paths can be imported (bundle packages first)",
            ));
        }
        let dir = Path::new(base).parent().unwrap_or(Path::new("/"));
        Ok(normalize(&dir.join(name)).to_string_lossy().into_owned())
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Loads modules from files, noting each (they are watched).
struct FsLoader {
    files: Rc<RefCell<Vec<PathBuf>>>,
}

impl Loader for FsLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js>> {
        self.files.borrow_mut().push(PathBuf::from(name));
        let source = std::fs::read(name)
            .map_err(|e| rquickjs::Error::new_loading_message(name, e.to_string()))?;
        Module::declare(ctx.clone(), name, source)
    }
}

/// `name: message` and the stack of a thrown value.
fn value_text(value: &Value<'_>) -> String {
    if let Some(object) = value.as_object() {
        let get = |key: &str| object.get::<_, Option<String>>(key).ok().flatten();
        let name = get("name").unwrap_or_else(|| "Error".into());
        let message = get("message").unwrap_or_default();
        let mut text = format!("{name}: {message}");
        if let Some(stack) = get("stack") {
            let stack = stack.trim_end();
            if !stack.is_empty() {
                text.push('\n');
                text.push_str(stack);
            }
        }
        return text;
    }
    value
        .as_string()
        .and_then(|s| s.to_string().ok())
        .map(|s| format!("Uncaught {s:?}"))
        .unwrap_or_else(|| format!("Uncaught {}", value.type_name()))
}

fn exception_text(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if error.is_exception() {
        value_text(&ctx.catch())
    } else {
        error.to_string()
    }
}

/// A copy of a `Uint8Array`'s bytes.
fn bytes_of(array: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: the slice borrowed from the engine is copied at once; no
    // JavaScript runs while it is alive.
    unsafe { array.as_bytes() }
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// A body handed over by JavaScript: a string (sent as UTF-8), a
/// `Uint8Array`, or nothing.
fn body_bytes(value: &Value<'_>) -> rquickjs::Result<Vec<u8>> {
    if let Some(text) = value.as_string() {
        return Ok(text.to_string()?.into_bytes());
    }
    if value.is_null() || value.is_undefined() {
        return Ok(Vec::new());
    }
    Ok(bytes_of(&TypedArray::<u8>::from_value(value.clone())?))
}

fn opt<'js, T: rquickjs::IntoJs<'js>>(
    ctx: &Ctx<'js>,
    value: Option<T>,
) -> rquickjs::Result<Value<'js>> {
    match value {
        Some(value) => value.into_js(ctx),
        None => Ok(Value::new_null(ctx.clone())),
    }
}

fn id(number: f64) -> u64 {
    if number.is_finite() && number >= 0.0 {
        number as u64
    } else {
        0
    }
}

fn sdk_response(status: u16, status_text: &str, flat: &[String], body: Vec<u8>) -> Response {
    let mut response = Response::new().status(status).as_given();
    if !status_text.is_empty() {
        response = response.reason(status_text);
    }
    for pair in flat.chunks_exact(2) {
        response.add_header(pair[0].clone(), pair[1].clone());
    }
    response.body(body)
}

/// Production's answer to an uncaught exception: no details, no type.
fn internal_error() -> Response {
    Response::ok("Internal Server Error").status(500).as_given()
}

/// The answer for a request stopped by the CPU or memory limit.
fn resource_limits() -> Response {
    Response::ok("Worker exceeded resource limits\n")
        .status(503)
        .header("content-type", "text/plain;charset=UTF-8")
        .as_given()
}

/// Writes a line of the worker's output to stderr, prefixed with the route.
pub fn log(route: &str, text: &str) {
    eprintln!("[{route}] {text}");
}

/// Runs a JS thread until its instance is retired. `ready` gets the files
/// read and whether the module loaded.
pub fn run(shared: Arc<Shared>, rx: Receiver<Msg>, tx: Sender<Msg>, ready: SyncSender<Ready>) {
    batch_scheduling();
    let files = Rc::new(RefCell::new(vec![shared.config.main.clone()]));
    let runtime = match Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send((Vec::new(), Err(format!("cannot create a JS runtime: {e}"))));
            return;
        }
    };
    runtime.set_memory_limit(shared.config.memory_limit);
    runtime.set_max_stack_size(2 * 1024 * 1024);
    let limits = Rc::new(Limits::default());
    {
        let limits = limits.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || limits.check())));
    }
    runtime.set_loader(
        FsResolver,
        FsLoader {
            files: files.clone(),
        },
    );
    let context = match Context::full(&runtime) {
        Ok(context) => context,
        Err(e) => {
            let _ = ready.send((Vec::new(), Err(format!("cannot create a JS context: {e}"))));
            return;
        }
    };
    context.with(|ctx| {
        let route = shared.config.route.clone();
        let cpu_limit = shared.config.cpu_limit;
        let state = Rc::new(RefCell::new(State {
            shared,
            tx,
            calls: HashMap::new(),
            next_call: 0,
            timers: BinaryHeap::new(),
            timer_owner: HashMap::new(),
            ops: HashMap::new(),
            bodies: HashMap::new(),
            next_body: 0,
            current: 0,
            started: Instant::now(),
        }));
        let setup_started = Instant::now();
        let entries = setup(&ctx, &state, &limits);
        if std::env::var_os("FLEXILIB_WORKERS_TRACE").is_some() {
            log(
                &route,
                &format!(
                    "JS setup took {:.2} ms",
                    setup_started.elapsed().as_secs_f64() * 1000.0
                ),
            );
        }
        let entries = match entries {
            Ok(entries) => entries,
            Err(message) => {
                let _ = ready.send((files.borrow().clone(), Err(message)));
                return;
            }
        };
        let _ = ready.send((files.borrow().clone(), Ok(())));
        drop(ready);
        EventLoop {
            ctx: ctx.clone(),
            state,
            entries,
            limits,
            route,
            cpu_limit,
        }
        .run(&rx);
    });
}

/// The prelude's entry points.
struct Entries<'js> {
    handle: Function<'js>,
    scheduled: Function<'js>,
    fire: Function<'js>,
    settle: Function<'js>,
}

fn setup<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<State>>,
    limits: &Rc<Limits>,
) -> Result<Entries<'js>, String> {
    let fail = |e: rquickjs::Error| exception_text(ctx, e);
    let natives = natives(ctx, state).map_err(fail)?;
    let prelude = prelude(ctx).map_err(fail)?;
    let exports: Object = prelude.call((natives,)).map_err(fail)?;
    let get = |name: &str| exports.get::<_, Function>(name).map_err(fail);
    let entries = Entries {
        handle: get("handle")?,
        scheduled: get("scheduled")?,
        fire: get("fire")?,
        settle: get("settle")?,
    };
    let config = state.borrow().shared.config.clone();
    let main = config.main.to_string_lossy().into_owned();
    let source = std::fs::read(&config.main)
        .map_err(|e| format!("cannot read {}: {e}", config.main.display()))?;
    // Top-level code runs under the CPU limit too.
    limits.deadline.set(Some(Instant::now() + config.cpu_limit));
    let loaded = (|| {
        let module = Module::declare(ctx.clone(), main.as_str(), source)?;
        let (module, promise) = module.eval()?;
        while ctx.execute_pending_job() {}
        promise.finish::<Value>()?;
        module.namespace()
    })();
    limits.deadline.set(None);
    if limits.fired.replace(false) {
        return Err(format!(
            "{main}: the module's top-level code exceeded the CPU limit ({} ms)",
            config.cpu_limit.as_millis()
        ));
    }
    let namespace = loaded.map_err(|e| format!("Uncaught {}", fail(e)))?;
    let bindings = Object::new(ctx.clone()).map_err(fail)?;
    bindings
        .set(
            "vars",
            ctx.json_parse(config.vars_json.as_str()).map_err(fail)?,
        )
        .map_err(fail)?;
    let kv = Object::new(ctx.clone()).map_err(fail)?;
    for (index, ns) in config.kv.iter().enumerate() {
        kv.set(ns.binding.as_str(), index).map_err(fail)?;
    }
    bindings.set("kv", kv).map_err(fail)?;
    get("setup")?
        .call::<_, Value>((namespace, bindings))
        .map_err(fail)?;
    Ok(entries)
}

/// Asks the kernel to treat this thread as a batch thread: a request handed
/// to it does not preempt the I/O thread that handed it over, so the I/O
/// thread goes on reading other connections and the JS thread then takes
/// several requests per wake-up instead of one per context switch.
fn batch_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain system call on the calling thread (pid 0) with a valid
    // parameter struct; failure only leaves the default policy.
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// The prelude compiled once per process: parsing and compiling it is most
/// of a runtime's start-up, loading its bytecode a fraction.
static PRELUDE_BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();

/// The prelude's function (it takes the natives), from cached bytecode.
fn prelude<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
    let bytecode = match PRELUDE_BYTECODE.get() {
        Some(bytecode) => bytecode,
        None => {
            let source = format!("export default {PRELUDE}");
            let module = Module::declare(ctx.clone(), "workers:runtime.js", source)?;
            let written = module.write(WriteOptions::default())?;
            PRELUDE_BYTECODE.get_or_init(|| written)
        }
    };
    // SAFETY: the bytes were written by `Module::write` of this very engine
    // in this process, and live in a static for the rest of it (QuickJS
    // keeps pointing into them).
    let module = unsafe { Module::load(ctx.clone(), bytecode) }?;
    let (module, promise) = module.eval()?;
    while ctx.execute_pending_job() {}
    promise.finish::<Value>()?;
    module.get("default")
}

struct EventLoop<'js> {
    ctx: Ctx<'js>,
    state: Rc<RefCell<State>>,
    entries: Entries<'js>,
    limits: Rc<Limits>,
    route: String,
    cpu_limit: Duration,
}

impl<'js> EventLoop<'js> {
    fn run(&self, rx: &Receiver<Msg>) {
        let mut retire_by: Option<Instant> = None;
        loop {
            loop {
                let due = self.state.borrow_mut().pop_due(Instant::now());
                let Some((timer, owner)) = due else { break };
                self.turn(owner, || self.entries.fire.call((timer as f64,)));
            }
            if let Some(by) = retire_by {
                if self.state.borrow().idle() || Instant::now() >= by {
                    break;
                }
            }
            let next = self.state.borrow().next_timer();
            let until = match (next, retire_by) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let message = match until {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                },
            };
            match message {
                Msg::Request(incoming) => self.request(*incoming),
                Msg::Done(op, result) => self.done(op, result),
                Msg::Shutdown => retire_by = Some(Instant::now() + SHUTDOWN_GRACE),
            }
        }
        // Whatever is left is abandoned: dropped responders answer 500,
        // dropped body writers abort their bodies.
        let calls: Vec<Call> = self
            .state
            .borrow_mut()
            .calls
            .drain()
            .map(|(_, c)| c)
            .collect();
        drop(calls);
    }

    fn request(&self, incoming: Incoming) {
        let call = {
            let mut state = self.state.borrow_mut();
            state.next_call += 1;
            let call = state.next_call;
            state.calls.insert(
                call,
                Call {
                    answer: Answer::Pending(incoming.responder),
                    cpu: Duration::ZERO,
                },
            );
            call
        };
        let Incoming {
            method,
            url,
            headers,
            body,
            scheduled,
            ..
        } = incoming;
        match scheduled {
            Some(cron) => self.turn(call, || self.entries.scheduled.call((call as f64, cron))),
            None => self.turn(call, || {
                let body = if body.is_empty() {
                    Value::new_null(self.ctx.clone())
                } else {
                    TypedArray::<u8>::new(self.ctx.clone(), body)?.into_value()
                };
                self.entries
                    .handle
                    .call((call as f64, method, url, headers, body))
            }),
        }
    }

    fn done(&self, op: u64, result: OpResult) {
        let Some(owner) = self.state.borrow_mut().ops.remove(&op) else {
            return; // cancelled
        };
        self.turn(owner, || {
            let ctx = &self.ctx;
            let (ok, a, b): (bool, Value, Value) = match result {
                OpResult::Err(kind, message) => (
                    false,
                    rquickjs::String::from_str(ctx.clone(), &message)?.into_value(),
                    rquickjs::String::from_str(ctx.clone(), kind)?.into_value(),
                ),
                OpResult::Ok(payload) => (
                    true,
                    self.payload(payload)?,
                    Value::new_undefined(ctx.clone()),
                ),
            };
            self.entries.settle.call((op as f64, ok, a, b))
        });
    }

    fn payload(&self, payload: Payload) -> rquickjs::Result<Value<'js>> {
        let ctx = &self.ctx;
        Ok(match payload {
            Payload::Undefined => Value::new_undefined(ctx.clone()),
            Payload::Null => Value::new_null(ctx.clone()),
            Payload::Text(text) => rquickjs::String::from_str(ctx.clone(), &text)?.into_value(),
            Payload::Entry(bytes, metadata) => {
                let array = Array::new(ctx.clone())?;
                array.set(0, TypedArray::<u8>::new(ctx.clone(), bytes)?)?;
                array.set(1, opt(ctx, metadata)?)?;
                array.into_value()
            }
            Payload::Head(head) => {
                let body = match head.body {
                    Some(rx) => {
                        let mut state = self.state.borrow_mut();
                        state.next_body += 1;
                        let id = state.next_body;
                        state.bodies.insert(id, rx);
                        id
                    }
                    None => 0,
                };
                let array = Array::new(ctx.clone())?;
                array.set(0, head.status)?;
                array.set(1, head.status_text)?;
                array.set(2, head.headers)?;
                array.set(3, body as f64)?;
                array.set(4, head.url)?;
                array.set(5, head.redirected)?;
                array.into_value()
            }
            Payload::Chunk(body, rx, chunk) => match chunk {
                Some(bytes) => {
                    self.state.borrow_mut().bodies.insert(body, rx);
                    TypedArray::<u8>::new(ctx.clone(), bytes.to_vec())?.into_value()
                }
                None => Value::new_null(ctx.clone()),
            },
        })
    }

    /// Runs JavaScript for request `owner` (0: none), then the microtasks
    /// it queued, under the request's remaining CPU budget.
    fn turn(&self, owner: u64, f: impl FnOnce() -> rquickjs::Result<Value<'js>>) {
        let budget = {
            let mut state = self.state.borrow_mut();
            state.current = owner;
            state
                .calls
                .get(&owner)
                .map_or(self.cpu_limit, |c| self.cpu_limit.saturating_sub(c.cpu))
        };
        let mut owner = owner;
        let mut started = Instant::now();
        self.limits.deadline.set(Some(started + budget));
        let mut error = f().err().map(|e| exception_text(&self.ctx, e));
        loop {
            if !self.limits.fired.get() {
                while self.ctx.execute_pending_job() {
                    if self.limits.fired.get() {
                        break;
                    }
                }
            }
            if !self.limits.fired.replace(false) {
                break;
            }
            self.charge(owner, started);
            self.exceeded(owner);
            error = None;
            // Microtasks left over run with a fresh budget, charged to no request.
            owner = 0;
            self.state.borrow_mut().current = 0;
            started = Instant::now();
            self.limits.deadline.set(Some(started + self.cpu_limit));
        }
        self.limits.deadline.set(None);
        self.charge(owner, started);
        if let Some(text) = error {
            self.fail(owner, &text);
        }
    }

    fn charge(&self, owner: u64, since: Instant) {
        if let Some(call) = self.state.borrow_mut().calls.get_mut(&owner) {
            call.cpu += since.elapsed();
        }
    }

    fn exceeded(&self, owner: u64) {
        log(
            &self.route,
            &format!(
                "Error: Worker exceeded CPU time limit ({} ms): the request was stopped",
                self.cpu_limit.as_millis()
            ),
        );
        let call = self.state.borrow_mut().calls.remove(&owner);
        if let Some(Call {
            answer: Answer::Pending(responder),
            ..
        }) = call
        {
            responder.complete(resource_limits());
        }
        self.ctx.run_gc();
    }

    fn fail(&self, owner: u64, text: &str) {
        log(&self.route, &format!("Uncaught {text}"));
        finish_failed(&self.state, owner);
        self.ctx.run_gc();
    }
}

/// Answers a failed request 500 (or aborts its body).
fn finish_failed(state: &Rc<RefCell<State>>, call: u64) {
    let call = state.borrow_mut().calls.remove(&call);
    if let Some(Call {
        answer: Answer::Pending(responder),
        ..
    }) = call
    {
        responder.complete(internal_error());
    }
}

fn type_error(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    Exception::throw_type(ctx, message)
}

/// The native functions the prelude builds the Web APIs on.
fn natives<'js>(ctx: &Ctx<'js>, state: &Rc<RefCell<State>>) -> rquickjs::Result<Object<'js>> {
    let n = Object::new(ctx.clone())?;
    let route = state.borrow().shared.config.route.clone();
    macro_rules! native {
        ($name:literal, $f:expr) => {
            n.set($name, Function::new(ctx.clone(), $f)?.with_name($name)?)?;
        };
    }

    native!("log", move |level: i32, text: String| {
        let prefix = match level {
            2 => "warn: ",
            3 => "error: ",
            _ => "",
        };
        log(&route, &format!("{prefix}{text}"));
    });
    let s = state.clone();
    native!("now", move || s.borrow().started.elapsed().as_secs_f64()
        * 1000.0);
    native!("utf8Encode", |ctx: Ctx<'js>, text: String| {
        TypedArray::<u8>::new(ctx, text.into_bytes())
    });
    native!("utf8Decode", |ctx: Ctx<'js>,
                           bytes: TypedArray<'js, u8>,
                           fatal: bool| {
        let bytes = bytes_of(&bytes);
        let text = if fatal {
            String::from_utf8(bytes).ok()
        } else {
            Some(String::from_utf8_lossy(&bytes).into_owned())
        };
        opt(&ctx, text)
    });
    native!("btoa", |ctx: Ctx<'js>, text: String| opt(
        &ctx,
        web::btoa(&text)
    ));
    native!("atob", |ctx: Ctx<'js>, text: String| opt(
        &ctx,
        web::atob(&text)
    ));
    native!("base64UrlEncode", |bytes: TypedArray<'js, u8>| {
        web::base64url_encode(&bytes_of(&bytes))
    });
    native!("base64UrlDecode", |ctx: Ctx<'js>, text: String| {
        match web::base64url_decode(&text) {
            Some(bytes) => {
                Ok::<_, rquickjs::Error>(TypedArray::<u8>::new(ctx, bytes)?.into_value())
            }
            None => Ok(Value::new_null(ctx)),
        }
    });
    native!("urlParse", |ctx: Ctx<'js>,
                         input: String,
                         base: Option<String>| {
        opt(
            &ctx,
            web::url_parse(&input, base.as_deref()).map(|u| web::url_parts(&u)),
        )
    });
    native!("urlSet", |ctx: Ctx<'js>,
                       href: String,
                       field: String,
                       value: String| {
        opt(
            &ctx,
            web::url_set(&href, &field, &value).map(|u| web::url_parts(&u)),
        )
    });
    native!("formDecode", |text: String| web::form_decode(&text));
    native!("formEncode", |flat: Vec<String>| web::form_encode(&flat));
    native!("randomBytes", |ctx: Ctx<'js>, n: usize| {
        TypedArray::<u8>::new(ctx, web::random_bytes(n.min(1 << 20)))
    });
    native!("uuid", web::uuid_v4);
    native!("digest", |ctx: Ctx<'js>,
                       algorithm: String,
                       data: TypedArray<'js, u8>| {
        let digest = web::digest(&algorithm, &bytes_of(&data))
            .map_err(|e| type_error(&ctx, &e.to_string()))?;
        TypedArray::<u8>::new(ctx, digest)
    });
    native!("hmac", |ctx: Ctx<'js>,
                     algorithm: String,
                     key: TypedArray<'js, u8>,
                     data: TypedArray<'js, u8>| {
        let mac = web::hmac(&algorithm, &bytes_of(&key), &bytes_of(&data))
            .map_err(|e| type_error(&ctx, &e.to_string()))?;
        TypedArray::<u8>::new(ctx, mac)
    });
    native!(
        "timingSafeEqual",
        |a: TypedArray<'js, u8>, b: TypedArray<'js, u8>| {
            web::timing_safe_equal(&bytes_of(&a), &bytes_of(&b))
        }
    );
    native!("multipart", |ctx: Ctx<'js>,
                          body: TypedArray<'js, u8>,
                          boundary: String| {
        let parts = web::multipart(bytes_of(&body), &boundary)
            .map_err(|e| type_error(&ctx, &format!("Failed to parse body as FormData: {e}")))?;
        let flat = Array::new(ctx.clone())?;
        for (i, part) in parts.into_iter().enumerate() {
            flat.set(i * 4, part.name)?;
            flat.set(i * 4 + 1, opt(&ctx, part.filename)?)?;
            flat.set(i * 4 + 2, opt(&ctx, part.content_type)?)?;
            flat.set(i * 4 + 3, TypedArray::<u8>::new(ctx.clone(), part.data)?)?;
        }
        Ok::<_, rquickjs::Error>(flat)
    });

    // Timers.
    let s = state.clone();
    native!("timerStart", move |timer: f64, ms: f64| {
        let mut state = s.borrow_mut();
        let delay = Duration::from_secs_f64((ms.max(0.0) / 1000.0).min(1e9));
        let at = Instant::now() + delay;
        let owner = state.current;
        state.timers.push(Reverse((at, id(timer))));
        state.timer_owner.insert(id(timer), owner);
    });
    let s = state.clone();
    native!("timerCancel", move |timer: f64| {
        s.borrow_mut().timer_owner.remove(&id(timer));
    });

    // Answering.
    let s = state.clone();
    native!("respond", move |call: f64,
                             status: u16,
                             status_text: String,
                             flat: Vec<String>,
                             body: Value<'js>| {
        let taken = s.borrow_mut().calls.remove(&id(call));
        if let Some(Call {
            answer: Answer::Pending(responder),
            ..
        }) = taken
        {
            let body = body_bytes(&body)?;
            responder.complete(sdk_response(status, &status_text, &flat, body));
        }
        Ok::<_, rquickjs::Error>(())
    });
    let s = state.clone();
    native!(
        "respondStream",
        move |call: f64, status: u16, status_text: String, flat: Vec<String>| {
            let call = id(call);
            let taken = s.borrow_mut().calls.remove(&call);
            if let Some(Call {
                answer: Answer::Pending(responder),
                cpu,
            }) = taken
            {
                let head = sdk_response(status, &status_text, &flat, Vec::new());
                if let Some(writer) = responder.stream(head) {
                    s.borrow_mut().calls.insert(
                        call,
                        Call {
                            answer: Answer::Streaming(writer),
                            cpu,
                        },
                    );
                }
            }
        }
    );
    let s = state.clone();
    native!("write", move |call: f64, chunk: TypedArray<'js, u8>| {
        let state = s.borrow();
        let Some(Call {
            answer: Answer::Streaming(writer),
            ..
        }) = state.calls.get(&id(call))
        else {
            return 2;
        };
        match writer.try_write(&bytes_of(&chunk)) {
            Ok(()) => 0,
            Err(WriteError::Full) => 1,
            Err(WriteError::Closed) => 2,
        }
    });
    let s = state.clone();
    native!("onWritable", move |op: f64, call: f64| {
        let op = id(op);
        let mut state = s.borrow_mut();
        let current = state.current;
        state.ops.insert(op, current);
        let tx = state.tx.clone();
        let notify = move || {
            let _ = tx.send(Msg::Done(op, OpResult::Ok(Payload::Undefined)));
        };
        match state.calls.get(&id(call)) {
            Some(Call {
                answer: Answer::Streaming(writer),
                ..
            }) => writer.on_writable(notify),
            _ => notify(),
        }
    });
    let s = state.clone();
    native!("end", move |call: f64, ok: bool| {
        let taken = s.borrow_mut().calls.remove(&id(call));
        if let Some(Call {
            answer: Answer::Streaming(writer),
            ..
        }) = taken
        {
            if ok {
                writer.finish();
            }
        }
    });
    let s = state.clone();
    let route = state.borrow().shared.config.route.clone();
    let memory_mb = state.borrow().shared.config.memory_limit / (1024 * 1024);
    native!("fail", move |ctx: Ctx<'js>, call: f64, text: String| {
        if text.starts_with("InternalError: out of memory") {
            // As production: the isolate's memory limit is a resource
            // limit (503), not the script's own error.
            log(
                &route,
                &format!(
                    "Error: Worker exceeded memory limit ({memory_mb} MB): the request was stopped"
                ),
            );
            let taken = s.borrow_mut().calls.remove(&id(call));
            if let Some(Call {
                answer: Answer::Pending(responder),
                ..
            }) = taken
            {
                responder.complete(resource_limits());
            }
        } else {
            log(&route, &format!("Uncaught {text}"));
            finish_failed(&s, id(call));
        }
        ctx.run_gc();
    });

    // Outbound fetch.
    let s = state.clone();
    native!("fetch", move |ctx: Ctx<'js>,
                           op: f64,
                           method: String,
                           url: String,
                           flat: Vec<String>,
                           body: Option<TypedArray<'js, u8>>,
                           redirect: String| {
        let url = url::Url::parse(&url)
            .map_err(|_| type_error(&ctx, &format!("Fetch API cannot load: {url}")))?;
        let redirect = match redirect.as_str() {
            "manual" => Redirect::Manual,
            "error" => Redirect::Error,
            _ => Redirect::Follow,
        };
        let body = body.map(|b| bytes_of(&b));
        let mut state = s.borrow_mut();
        let client = state.shared.client.clone();
        state.spawn(id(op), async move {
            match crate::fetch::fetch(client, method, url, flat, body, redirect).await {
                Ok(head) => OpResult::Ok(Payload::Head(head)),
                Err(e) => OpResult::Err("TypeError", e.to_string()),
            }
        });
        Ok::<_, rquickjs::Error>(())
    });
    let s = state.clone();
    native!("bodyRead", move |op: f64, body: f64| {
        let (op, body) = (id(op), id(body));
        let mut state = s.borrow_mut();
        match state.bodies.remove(&body) {
            Some(mut rx) => state.spawn(op, async move {
                match rx.recv().await {
                    Some(Ok(chunk)) => OpResult::Ok(Payload::Chunk(body, rx, Some(chunk))),
                    Some(Err(e)) => OpResult::Err("TypeError", e),
                    None => OpResult::Ok(Payload::Chunk(body, rx, None)),
                }
            }),
            None => state.spawn(op, async { OpResult::Ok(Payload::Null) }),
        }
    });
    let s = state.clone();
    native!("bodyCancel", move |body: f64| {
        s.borrow_mut().bodies.remove(&id(body));
    });
    let s = state.clone();
    native!("opCancel", move |op: f64| {
        s.borrow_mut().ops.remove(&id(op));
    });

    // KV.
    let kv_store = |ctx: &Ctx<'js>, state: &Rc<RefCell<State>>, ns: usize| {
        state
            .borrow()
            .shared
            .kv
            .get(ns)
            .cloned()
            .ok_or_else(|| type_error(ctx, "unknown KV namespace"))
    };
    let s = state.clone();
    native!("kvGet", move |ctx: Ctx<'js>,
                           op: f64,
                           ns: usize,
                           key: String| {
        let store = kv_store(&ctx, &s, ns)?;
        s.borrow_mut()
            .spawn_blocking(id(op), move || match store.get(&key) {
                Ok(Some((value, metadata))) => OpResult::Ok(Payload::Entry(value, metadata)),
                Ok(None) => OpResult::Ok(Payload::Null),
                Err(e) => OpResult::Err("Error", e.to_string()),
            });
        Ok::<_, rquickjs::Error>(())
    });
    let s = state.clone();
    native!(
        "kvPut",
        move |ctx: Ctx<'js>,
              op: f64,
              ns: usize,
              key: String,
              value: TypedArray<'js, u8>,
              expiration: f64,
              metadata: Option<String>| {
            let store = kv_store(&ctx, &s, ns)?;
            let value = bytes_of(&value);
            let expiration = if expiration.is_finite() {
                expiration as i64
            } else {
                0
            };
            s.borrow_mut().spawn_blocking(id(op), move || {
                match store.put(&key, &value, expiration, metadata.as_deref()) {
                    Ok(()) => OpResult::Ok(Payload::Undefined),
                    Err(e) => OpResult::Err("Error", e.to_string()),
                }
            });
            Ok::<_, rquickjs::Error>(())
        }
    );
    let s = state.clone();
    native!("kvDelete", move |ctx: Ctx<'js>,
                              op: f64,
                              ns: usize,
                              key: String| {
        let store = kv_store(&ctx, &s, ns)?;
        s.borrow_mut()
            .spawn_blocking(id(op), move || match store.delete(&key) {
                Ok(()) => OpResult::Ok(Payload::Undefined),
                Err(e) => OpResult::Err("Error", e.to_string()),
            });
        Ok::<_, rquickjs::Error>(())
    });
    let s = state.clone();
    native!("kvList", move |ctx: Ctx<'js>,
                            op: f64,
                            ns: usize,
                            prefix: String,
                            limit: usize,
                            cursor: String| {
        let store = kv_store(&ctx, &s, ns)?;
        s.borrow_mut()
            .spawn_blocking(id(op), move || match store.list(&prefix, limit, &cursor) {
                Ok(json) => OpResult::Ok(Payload::Text(json)),
                Err(e) => OpResult::Err("Error", e.to_string()),
            });
        Ok::<_, rquickjs::Error>(())
    });
    Ok(n)
}
