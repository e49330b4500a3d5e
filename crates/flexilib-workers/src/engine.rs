//! One JS thread: a QuickJS runtime and context with the worker's module
//! loaded (an "isolate"), and its event loop. Requests, finished host
//! operations (fetch, KV, body chunks, room to write) and shutdown arrive
//! as messages; timers are kept here. Every stretch of JavaScript (a
//! "turn": one message or timer, then the microtasks it queued) runs under
//! the CPU budget of the request that started the chain, on the thread's
//! CPU clock, enforced by the runtime's interrupt handler.
//!
//! A request lives until it has answered and its `waitUntil` work is
//! done (or 30 s after the answer); then its timers and host operations
//! are cancelled, as workerd does. A request past its CPU budget is
//! stopped; if it leaves microtasks behind (they cannot be told apart or
//! dropped), the isolate is torn down and a fresh one loaded, so no work
//! outlives the budget that paid for it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rquickjs::module::WriteOptions;
use rquickjs::{Array, Context, Ctx, Function, Module, Object, Runtime, TypedArray, Value};

use crate::cpu::{self, Limits};
use crate::loader::{ProjectLoader, ProjectResolver};
use crate::natives::{natives, opt};
use crate::queue::Queue;
use crate::report::{internal_error, log, resource_limits, value_text};
use crate::shared::Wake;
use crate::shared::{Incoming, Msg, OpResult, Payload, Ready, Shared};
use crate::state::{answer_failed, Answer, Call, State, WAIT_UNTIL_LIMIT};
use crate::websocket::{self, Event};

const PRELUDE: &str = include_str!("js/prelude.js");

/// Parts of the prelude kept in files of their own, spliced in where the
/// prelude says `// @include NAME` (they share its scope).
const PRELUDE_PARTS: [(&str, &str); 2] = [
    ("rpc.js", include_str!("js/rpc.js")),
    ("sql.js", include_str!("js/sql.js")),
];

/// The prelude's whole source, its parts spliced in.
fn prelude_source() -> String {
    PRELUDE_PARTS
        .iter()
        .fold(PRELUDE.to_string(), |source, (name, part)| {
            source.replacen(&format!("// @include {name}\n"), part, 1)
        })
}

/// How long a retired instance's threads may finish `waitUntil` work.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

fn exception_text(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if error.is_exception() {
        value_text(&ctx.catch())
    } else {
        error.to_string()
    }
}

/// Runs a JS thread until its instance is retired. `ready` gets the files
/// read and whether the module loaded; `queue` is this thread's bound.
pub fn run(
    shared: Arc<Shared>,
    queue: Arc<Queue>,
    rx: Receiver<Msg>,
    tx: Sender<Msg>,
    ready: SyncSender<Ready>,
) {
    batch_scheduling();
    let mut ready = Some(ready);
    let mut generation = 0;
    loop {
        generation += 1;
        match isolate(&shared, &queue, &rx, &tx, generation, ready.take()) {
            Outcome::Exit => return,
            Outcome::Reset => log(
                &shared.config.route,
                "the JS runtime was reset: a request exceeded its CPU limit and left work \
                 behind; requests in flight on this thread were answered 503, the module is \
                 loaded again",
            ),
        }
    }
}

/// How an isolate's event loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The instance is retired (or the module no longer loads).
    Exit,
    /// Tear the isolate down and start a fresh one.
    Reset,
}

/// What a turn left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Reset,
}

/// Builds an isolate (runtime, context, the module loaded) and runs its
/// event loop. The first isolate of a thread reports to `ready`.
fn isolate(
    shared: &Arc<Shared>,
    queue: &Queue,
    rx: &Receiver<Msg>,
    tx: &Sender<Msg>,
    generation: u64,
    ready: Option<SyncSender<Ready>>,
) -> Outcome {
    let route = shared.config.route.clone();
    let files = Rc::new(RefCell::new(vec![shared.config.main.clone()]));
    let report = |ready: Option<SyncSender<Ready>>, result: Result<(), String>| match ready {
        Some(ready) => {
            let _ = ready.send((files.borrow().clone(), result));
        }
        None => {
            if let Err(message) = result {
                log(&route, &format!("the JS thread stops: {message}"));
            }
        }
    };
    let runtime = match Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            report(ready, Err(format!("cannot create a JS runtime: {e}")));
            return Outcome::Exit;
        }
    };
    runtime.set_memory_limit(shared.config.memory_limit);
    runtime.set_max_stack_size(2 * 1024 * 1024);
    let limits = Rc::new(Limits::default());
    {
        let limits = limits.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || limits.check())));
    }
    let project = Rc::new(shared.project.clone());
    runtime.set_loader(
        ProjectResolver {
            project: project.clone(),
        },
        ProjectLoader {
            project,
            files: files.clone(),
            route: route.clone(),
        },
    );
    let context = match Context::full(&runtime) {
        Ok(context) => context,
        Err(e) => {
            report(ready, Err(format!("cannot create a JS context: {e}")));
            return Outcome::Exit;
        }
    };
    context.with(|ctx| {
        let cpu_limit = shared.config.cpu_limit;
        let state = Rc::new(RefCell::new(State::new(
            shared.clone(),
            tx.clone(),
            generation,
        )));
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
                report(ready, Err(message));
                return Outcome::Exit;
            }
        };
        report(ready, Ok(()));
        let _live = shared.counts.isolates.hold();
        let outcome = EventLoop {
            ctx: ctx.clone(),
            state: state.clone(),
            entries,
            limits,
            route: route.clone(),
            cpu_limit,
        }
        .run(rx, queue);
        // Its Durable Objects go with it.
        if state.borrow().reports_objects {
            shared
                .counts
                .objects
                .store(0, std::sync::atomic::Ordering::Relaxed);
        }
        outcome
    })
}

/// The prelude's entry points.
struct Entries<'js> {
    handle: Function<'js>,
    object: Function<'js>,
    rpc: Function<'js>,
    scheduled: Function<'js>,
    fire: Function<'js>,
    settle: Function<'js>,
    forget: Function<'js>,
    socket: Function<'js>,
}

fn setup<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<State>>,
    limits: &Rc<Limits>,
) -> Result<Entries<'js>, String> {
    let fail = |e: rquickjs::Error| exception_text(ctx, e);
    let natives = natives(ctx, state).map_err(fail)?;
    let prelude = prelude(ctx).map_err(fail)?;
    let exports: Object = prelude.call((natives.clone(),)).map_err(fail)?;
    {
        let config = &state.borrow().shared.config;
        if config.node_compat() {
            node_compat(ctx, natives, &config.node_env_json()).map_err(fail)?;
        }
    }
    let get = |name: &str| exports.get::<_, Function>(name).map_err(fail);
    let entries = Entries {
        handle: get("handle")?,
        object: get("object")?,
        rpc: get("rpc")?,
        scheduled: get("scheduled")?,
        fire: get("fire")?,
        settle: get("settle")?,
        forget: get("forget")?,
        socket: get("socket")?,
    };
    let shared = state.borrow().shared.clone();
    let config = &shared.config;
    let project = &shared.project;
    let shown = project.shown(&config.main);
    let main = project
        .locate(&config.main, &shown)
        .map_err(|e| format!("the main module: {e}"))?;
    let source = project
        .read(&main)
        .map_err(|e| format!("the main module: {e}"))?;
    let main = main.to_string_lossy().into_owned();
    // Top-level code runs under the CPU limit too.
    limits.arm(config.cpu_limit);
    let loaded = (|| {
        let module = Module::declare(ctx.clone(), main.as_str(), source)?;
        let (module, promise) = module.eval()?;
        while !limits.fired() && ctx.execute_pending_job() {}
        promise.finish::<Value>()?;
        module.namespace()
    })();
    limits.disarm();
    if limits.take_fired() {
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
    let services = Object::new(ctx.clone()).map_err(fail)?;
    for service in &config.services {
        let target = vec![
            service.service.clone(),
            service.entrypoint.clone().unwrap_or_default(),
        ];
        services
            .set(service.binding.as_str(), target)
            .map_err(fail)?;
    }
    bindings.set("services", services).map_err(fail)?;
    let objects = Object::new(ctx.clone()).map_err(fail)?;
    for (index, object) in config.objects.iter().enumerate() {
        let entry = Object::new(ctx.clone()).map_err(fail)?;
        entry.set("index", index).map_err(fail)?;
        entry
            .set("className", object.class_name.as_str())
            .map_err(fail)?;
        entry.set("sqlite", object.sqlite).map_err(fail)?;
        objects.set(object.binding.as_str(), entry).map_err(fail)?;
    }
    bindings.set("objects", objects).map_err(fail)?;
    let d1 = Object::new(ctx.clone()).map_err(fail)?;
    for (index, db) in config.d1.iter().enumerate() {
        d1.set(db.binding.as_str(), index).map_err(fail)?;
    }
    bindings.set("d1", d1).map_err(fail)?;
    let r2 = Object::new(ctx.clone()).map_err(fail)?;
    for (index, bucket) in config.r2.iter().enumerate() {
        r2.set(bucket.binding.as_str(), index).map_err(fail)?;
    }
    bindings.set("r2", r2).map_err(fail)?;
    get("setup")?
        .call::<_, Value>((namespace, bindings))
        .map_err(fail)?;
    Ok(entries)
}

/// Evaluates the `nodejs_compat` modules (js/node.js) and leaves them
/// where the loader's `node:` modules find them.
fn node_compat<'js>(ctx: &Ctx<'js>, natives: Object<'js>, env_json: &str) -> rquickjs::Result<()> {
    let make = cached_default(ctx, &NODE_BYTECODE, "workers:node.js", || {
        crate::node::SOURCE.to_string()
    })?;
    let env = ctx.json_parse(env_json)?;
    let modules: Value = make.call((natives, env))?;
    let register: Function = ctx.eval(format!(
        "(modules) => Object.defineProperty(globalThis, Symbol.for('{}'), {{ value: modules }})",
        crate::node::GLOBAL_KEY
    ))?;
    register.call::<_, Value>((modules,))?;
    Ok(())
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

/// The `nodejs_compat` modules (js/node.js), compiled once per process.
static NODE_BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();

/// The prelude's function (it takes the natives), from cached bytecode.
fn prelude<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
    cached_default(ctx, &PRELUDE_BYTECODE, "workers:runtime.js", prelude_source)
}

/// The default export of `export default SOURCE` (module `name`), from
/// bytecode compiled once per process into `cache`.
fn cached_default<'js>(
    ctx: &Ctx<'js>,
    cache: &'static OnceLock<Vec<u8>>,
    name: &str,
    source: impl FnOnce() -> String,
) -> rquickjs::Result<Function<'js>> {
    let bytecode = match cache.get() {
        Some(bytecode) => bytecode,
        None => {
            let module =
                Module::declare(ctx.clone(), name, format!("export default {}", source()))?;
            let written = module.write(WriteOptions::default())?;
            cache.get_or_init(|| written)
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
    fn run(&self, rx: &Receiver<Msg>, queue: &Queue) -> Outcome {
        let mut retire_by: Option<Instant> = None;
        let outcome = loop {
            // The timers due now, not those they set again while running:
            // messages get their turn between two rounds.
            let now = Instant::now();
            let mut flow = Flow::Continue;
            while flow == Flow::Continue {
                let due = self.state.borrow_mut().pop_due(now);
                let Some((timer, owner)) = due else { break };
                flow = self.turn(owner, || self.entries.fire.call((timer as f64,)));
            }
            if flow == Flow::Continue {
                self.expire_waits(now);
            }
            if flow == Flow::Reset {
                break Outcome::Reset;
            }
            if let Some(by) = retire_by {
                if self.state.borrow().idle() || Instant::now() >= by {
                    break Outcome::Exit;
                }
            }
            let until = {
                let state = self.state.borrow();
                [state.next_timer(), state.next_wait_limit(), retire_by]
                    .into_iter()
                    .flatten()
                    .min()
            };
            let message = match until {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break Outcome::Exit,
                },
                None => match rx.recv() {
                    Ok(message) => message,
                    Err(_) => break Outcome::Exit,
                },
            };
            let flow = match message {
                Msg::Request(incoming) => {
                    queue.leave(incoming.body.len());
                    self.request(*incoming)
                }
                Msg::Done(generation, op, result)
                    if generation == self.state.borrow().generation =>
                {
                    self.done(op, result)
                }
                Msg::Done(..) => Flow::Continue,
                Msg::Socket(generation, socket, wake)
                    if generation == self.state.borrow().generation =>
                {
                    self.socket(socket, wake)
                }
                Msg::Socket(..) => Flow::Continue,
                Msg::Shutdown => {
                    retire_by = Some(Instant::now() + SHUTDOWN_GRACE);
                    Flow::Continue
                }
            };
            if flow == Flow::Reset {
                break Outcome::Reset;
            }
        };
        // A retiring instance does not start again.
        let outcome = if retire_by.is_some() {
            Outcome::Exit
        } else {
            outcome
        };
        let calls: Vec<Call> = self
            .state
            .borrow_mut()
            .calls
            .drain()
            .map(|(_, c)| c)
            .collect();
        for call in calls {
            match (outcome, call.answer) {
                // The requests in flight go down with the isolate.
                (Outcome::Reset, Some(answer)) => answer.fail_with(resource_limits()),
                // Whatever is left is abandoned: dropped responders answer
                // 500, dropped body writers abort their bodies.
                (_, answer) => drop(answer),
            }
        }
        outcome
    }

    fn request(&self, incoming: Incoming) -> Flow {
        let call = {
            let mut state = self.state.borrow_mut();
            state.next_call += 1;
            let call = state.next_call;
            let counted = state.shared.counts.calls.hold();
            state.calls.insert(
                call,
                Call {
                    answer: Some(match (incoming.responder, incoming.service) {
                        (Some(responder), _) => Answer::Pending(responder),
                        (None, Some(reply)) => Answer::Service(reply),
                        (None, None) => {
                            Answer::Cron(incoming.scheduled.clone().unwrap_or_default())
                        }
                    }),
                    cpu: Duration::ZERO,
                    waits: 0,
                    answered_at: None,
                    _counted: counted,
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
            object,
            entry,
            ..
        } = incoming;
        if let Some(entry) = entry {
            return self.turn(call, || {
                let body = if body.is_empty() {
                    Value::new_null(self.ctx.clone())
                } else {
                    TypedArray::<u8>::new(self.ctx.clone(), body)?.into_value()
                };
                let which = vec![entry.entrypoint, entry.method];
                self.entries
                    .rpc
                    .call((call as f64, which, method, url, headers, body))
            });
        }
        if let Some(target) = object {
            return self.turn(call, || {
                let body = if body.is_empty() {
                    Value::new_null(self.ctx.clone())
                } else {
                    TypedArray::<u8>::new(self.ctx.clone(), body)?.into_value()
                };
                // [binding index, object id, RPC method or ''].
                let which = vec![
                    target.binding.to_string(),
                    target.id,
                    target.rpc.unwrap_or_default(),
                ];
                self.entries
                    .object
                    .call((call as f64, which, method, url, headers, body))
            });
        }
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

    /// Runs the events of WebSocket `socket` that are there to run.
    fn socket(&self, socket: u64, wake: Wake) -> Flow {
        let mut wake = wake;
        while let Some(event) = websocket::next_event(&self.state, socket, wake) {
            wake = Wake::More;
            let flow = self.turn(socket, || {
                let ctx = &self.ctx;
                let text =
                    |t: &str| rquickjs::String::from_str(ctx.clone(), t).map(|s| s.into_value());
                let (kind, data, code, reason, clean) = match event {
                    Event::Text(t) => ("message", text(&t)?, 0, String::new(), true),
                    Event::Binary(b) => (
                        "message",
                        TypedArray::<u8>::new(ctx.clone(), b)?.into_value(),
                        0,
                        String::new(),
                        true,
                    ),
                    Event::Close(code, reason, clean) => {
                        ("close", Value::new_null(ctx.clone()), code, reason, clean)
                    }
                    Event::Error(message) => ("error", text(&message)?, 1006, String::new(), false),
                };
                self.entries
                    .socket
                    .call((socket as f64, kind, data, code, reason, clean))
            });
            websocket::settle(&self.state, socket);
            if flow == Flow::Reset {
                return flow;
            }
        }
        Flow::Continue
    }

    fn done(&self, op: u64, result: OpResult) -> Flow {
        let Some(owner) = self.state.borrow_mut().ops.remove(&op) else {
            return Flow::Continue; // cancelled
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
                    self.payload(owner, payload)?,
                    Value::new_undefined(ctx.clone()),
                ),
            };
            self.entries.settle.call((op as f64, ok, a, b))
        })
    }

    fn payload(&self, owner: u64, payload: Payload) -> rquickjs::Result<Value<'js>> {
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
                        state.bodies.insert(id, (owner, rx));
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
                    self.state.borrow_mut().bodies.insert(body, (owner, rx));
                    TypedArray::<u8>::new(ctx.clone(), bytes.to_vec())?.into_value()
                }
                None => Value::new_null(ctx.clone()),
            },
        })
    }

    /// Runs JavaScript for live request `owner`, then the microtasks it
    /// queued, under the request's remaining CPU budget. Work for a request
    /// that has ended is not run.
    fn turn(&self, owner: u64, f: impl FnOnce() -> rquickjs::Result<Value<'js>>) -> Flow {
        let budget = {
            let mut state = self.state.borrow_mut();
            let Some(call) = state.calls.get(&owner) else {
                return Flow::Continue;
            };
            let budget = self.cpu_limit.saturating_sub(call.cpu);
            state.current = owner;
            budget
        };
        let started = self.limits.arm(budget);
        let error = f().err().map(|e| exception_text(&self.ctx, e));
        if !self.limits.fired() {
            while self.ctx.execute_pending_job() {
                if self.limits.fired() {
                    break;
                }
            }
        }
        self.limits.disarm();
        let used = cpu::thread_time().saturating_sub(started);
        if let Some(call) = self.state.borrow_mut().calls.get_mut(&owner) {
            call.cpu += used;
        }
        let flow = if self.limits.take_fired() {
            self.exceeded(owner);
            // Microtasks left behind belong to this request, and QuickJS
            // cannot drop them: the isolate goes. (Whether one is left is
            // seen by running it under a spent budget: it stops at once.)
            self.limits.arm(Duration::ZERO);
            let left = self.ctx.execute_pending_job();
            self.limits.disarm();
            self.limits.take_fired();
            if left {
                Flow::Reset
            } else {
                Flow::Continue
            }
        } else {
            if let Some(text) = error {
                self.fail(owner, &text);
            }
            Flow::Continue
        };
        self.state.borrow_mut().current = 0;
        self.forget();
        flow
    }

    /// Lets the prelude drop the callbacks of cancelled timers and ops.
    fn forget(&self) {
        let (timers, ops) = std::mem::take(&mut self.state.borrow_mut().forgotten);
        if timers.is_empty() && ops.is_empty() {
            return;
        }
        let ids = |ids: Vec<u64>| ids.into_iter().map(|id| id as f64).collect::<Vec<_>>();
        self.limits.arm(self.cpu_limit);
        let _ = self
            .entries
            .forget
            .call::<_, Value>((ids(timers), ids(ops)));
        self.limits.disarm();
        self.limits.take_fired();
    }

    /// Ends requests whose `waitUntil` work ran out of time.
    fn expire_waits(&self, now: Instant) {
        let expired: Vec<u64> = self
            .state
            .borrow()
            .calls
            .iter()
            .filter(|(_, c)| c.waits > 0)
            .filter(|(_, c)| c.answered_at.is_some_and(|at| at + WAIT_UNTIL_LIMIT <= now))
            .map(|(id, _)| *id)
            .collect();
        for call in expired {
            log(
                &self.route,
                &format!(
                    "waitUntil() work still running {} s after the response was cancelled",
                    WAIT_UNTIL_LIMIT.as_secs()
                ),
            );
            self.state.borrow_mut().finish(call);
        }
        self.forget();
    }

    fn exceeded(&self, owner: u64) {
        log(
            &self.route,
            &format!(
                "Error: Worker exceeded CPU time limit ({} ms): the request was stopped",
                self.cpu_limit.as_millis()
            ),
        );
        let call = self.state.borrow_mut().finish(owner);
        if let Some(answer) = call.and_then(|c| c.answer) {
            answer.fail_with(resource_limits());
        }
        self.ctx.run_gc();
    }

    fn fail(&self, owner: u64, text: &str) {
        log(&self.route, &format!("Uncaught {text}"));
        answer_failed(&self.state, owner, internal_error());
        self.ctx.run_gc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prelude_part_is_spliced_in() {
        let source = prelude_source();
        assert!(!source.contains("// @include"));
        for (_, part) in PRELUDE_PARTS {
            assert!(source.contains(part));
        }
    }
}
