//! One instance of a function: a process (in its own process group, killed
//! if the server dies), its Runtime API listener, and the state of the one
//! invocation it may run at a time.
//!
//! An invocation is *queued* on the instance by the pool, *handed out* when
//! the process calls `/next` (its deadline starts then), and *finished* by
//! `/response` or `/error`, by the deadline (the process is killed), or by
//! the process's exit. Whatever finishes it reports once to the waiting
//! request and writes `END` and `REPORT`; a live instance then goes back to
//! its pool, a dead one leaves it.

use parking_lot::Mutex;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hyper::header::HeaderValue;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::AbortHandle;

use super::{ids, logs, reaper, Failure, Function, Outcome};
use crate::os;

/// How long a queued invocation may wait for the runtime's `/next`: the
/// first one bounds the runtime's start (AWS's init limit is 10 s); a later
/// one, a runtime that stopped asking for events.
const PICKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Kills every instance still running, and whatever they left behind
/// (worker shutdown).
pub fn kill_all() {
    reaper::end_all();
}

/// Who keeps an instance between invocations (the function's pool): told
/// synchronously, so a client's next request finds the instance back.
pub trait Owner: Send + Sync {
    /// The instance finished its invocation and can take another.
    fn release(&self, instance: &Arc<FunctionInstance>);
    /// The instance died (told once or more; later calls do nothing).
    fn remove(&self, instance: &Arc<FunctionInstance>);
}

/// One request for the function.
pub struct Invocation {
    /// The Lambda request id.
    pub request_id: String,
    /// The event (JSON).
    pub event: Bytes,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// `Lambda-Runtime-Client-Context`, if the caller sent one.
    pub client_context: Option<HeaderValue>,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Outcome>,
}

/// An invocation handed to the process.
struct Active {
    request_id: String,
    /// Taken when the outcome (or the start of a stream) is sent.
    reply: Option<oneshot::Sender<Outcome>>,
    started: Instant,
    /// Set on the first invocation of the instance.
    init_duration: Option<Duration>,
    /// A `/response` or `/error` is being received.
    responding: bool,
    /// When it times out.
    deadline: Instant,
}

#[derive(Default)]
struct State {
    queued: Option<Box<Invocation>>,
    /// When `queued` was queued.
    queued_at: Option<Instant>,
    active: Option<Active>,
    /// The process asked for its first event.
    initialized: bool,
    /// What the runtime posted to `/init/error`.
    init_error: Option<Bytes>,
    dead: bool,
    /// The leader was reaped: its pid (and process group id) may name
    /// another process now, so nothing is sent to it any more.
    reaped: bool,
    /// What the deadline task sleeps until (`None`: it waits to be told);
    /// it must be woken for an earlier deadline.
    deadline_task_until: Option<Instant>,
}

impl State {
    /// A deadline at `at` is due: true if the deadline task sleeps past it
    /// (or waits to be told), so it must be woken to look again.
    fn wants_deadline_task_at(&mut self, at: Instant) -> bool {
        let wake = self.deadline_task_until.is_none_or(|until| until > at);
        if wake {
            self.deadline_task_until = Some(at);
        }
        wake
    }
}

/// Where an instance is in its life ([`FunctionInstance::phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The process runs but its runtime has not asked for its first event
    /// yet (a cold start).
    Starting,
    /// Its runtime asked for an event: it runs invocations (busy or idle).
    Started,
    /// Killed or exited, not yet reaped.
    Stopping,
}

/// What `/next` gets.
pub struct Handout {
    /// The invocation's request id.
    pub request_id: String,
    /// The event.
    pub event: Bytes,
    /// Deadline, ms since the epoch.
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// `Lambda-Runtime-Client-Context`.
    pub client_context: Option<HeaderValue>,
}

/// Why a Runtime API call does not fit the instance's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No invocation with this id is running here.
    #[error("invalid request ID")]
    UnknownRequest,
    /// A result for this invocation is already being received.
    #[error("a result for this invocation is already being received")]
    AlreadyResponding,
    /// `/next` while an invocation is running.
    #[error("an invocation is still running")]
    Busy,
    /// `/init/error` after the runtime asked for an event.
    #[error("the runtime is already initialized")]
    Initialized,
    /// The instance is stopping.
    #[error("the instance is stopping")]
    Dead,
}

/// A running instance.
pub struct FunctionInstance {
    /// The pool generation it was started for.
    pub generation: u64,
    /// Its process id (and process group id).
    pub pid: u32,
    /// The mark in its processes' environment (see `reaper`).
    pub mark: String,
    /// Its Runtime API's address.
    pub api: std::net::SocketAddr,
    /// The core thread serving its Runtime API, if one does (see
    /// [`crate::control::home`]).
    pub home: Option<std::thread::ThreadId>,
    /// Whether that thread is inside a library call (its Runtime API then
    /// waits for the call to return).
    pub home_calls: Option<crate::handlers::CallWatch>,
    function: Arc<Function>,
    pool: Weak<dyn Owner>,
    state: Mutex<State>,
    next_ready: Notify,
    /// Wakes the deadline task (an invocation started, or the instance died).
    deadline_armed: Notify,
    spawned: Instant,
    /// Keeps the Runtime API connections' shutdown receivers open.
    _api_shutdown: watch::Sender<bool>,
    api_task: Mutex<Option<AbortHandle>>,
    /// Peak memory last read, for reports after the process is gone.
    max_memory_mb: AtomicU64,
    /// When it was read (reading `/proc` on every invocation costs more
    /// than the rest of the invocation's bookkeeping).
    max_memory_read: Mutex<Option<Instant>>,
}

impl FunctionInstance {
    /// Starts a process for `function` whose Runtime API is at `api` (the
    /// owner serves it there: [`FunctionInstance::runtime_api_shutdown`],
    /// [`FunctionInstance::set_runtime_api_task`]), with the Lambda environment.
    /// The caller registers the instance, then hands the child to
    /// [`FunctionInstance::watch`].
    pub fn spawn(
        function: &Arc<Function>,
        generation: u64,
        address: std::net::SocketAddr,
        pool: Weak<dyn Owner>,
        environment: &[(String, String)],
    ) -> std::io::Result<(Arc<Self>, tokio::process::Child)> {
        let spec = &function.spec;
        // The runtime client FlexiLib ships, if the function runs one.
        let client_script = spec
            .language
            .filter(|_| spec.shipped_client)
            .map(super::runtime_clients::script)
            .transpose()?;
        let mark = reaper::new_mark();
        let mut command = tokio::process::Command::new(&spec.program);
        if let Some(script) = client_script {
            command.arg(script);
        }
        command
            .args(&spec.args)
            .current_dir(&spec.dir)
            .envs(function.environment(address))
            .envs(environment.iter().map(|(k, v)| (k, v)))
            .env(crate::process_tree::INSTANCE_MARK, &mark)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        os::kill_child_with_parent(command.as_std_mut());
        let spawned = Instant::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                reaper::start_failed(&mark);
                return Err(error);
            }
        };
        let pid = child.id().unwrap_or_default();
        reaper::leader_started(pid);
        let name: Arc<str> = Arc::from(spec.name.as_str());
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(logs::forward(Arc::clone(&name), stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(logs::forward(name, stderr));
        }
        let (api_shutdown, _) = watch::channel(false);
        let on_core = crate::control::on_core_thread();
        let instance = Arc::new(Self {
            generation,
            pid,
            mark,
            api: address,
            home: on_core.then(|| std::thread::current().id()),
            home_calls: on_core.then(crate::handlers::CallWatch::this_thread),
            function: Arc::clone(function),
            pool,
            state: Mutex::new(State::default()),
            next_ready: Notify::new(),
            deadline_armed: Notify::new(),
            spawned,
            _api_shutdown: api_shutdown,
            api_task: Mutex::new(None),
            max_memory_mb: AtomicU64::new(0),
            max_memory_read: Mutex::new(None),
        });
        tracing::debug!(function = %spec.name, pid, api = %address, "instance started");
        Ok((instance, child))
    }

    /// What the Runtime API's connections watch to close.
    pub fn runtime_api_shutdown(&self) -> watch::Receiver<bool> {
        self._api_shutdown.subscribe()
    }

    /// The task serving the Runtime API, aborted when the process exits.
    pub fn set_runtime_api_task(&self, task: AbortHandle) {
        *self.api_task.lock() = Some(task);
    }

    /// Watches the process: its exit, its time to initialize, and its
    /// invocations' deadlines.
    pub fn watch(instance: &Arc<Self>, mut child: tokio::process::Child) {
        tokio::spawn(Arc::clone(instance).enforce_deadlines());
        let watched = Arc::clone(instance);
        tokio::spawn(async move {
            let status = child.wait().await;
            watched.exited(status.map_or_else(|e| e.to_string(), |s| s.to_string()));
        });
    }

    /// The function it runs.
    pub fn function(&self) -> &Arc<Function> {
        &self.function
    }

    /// Queues `invocation` for the process; gives it back if the instance died.
    pub fn assign(&self, invocation: Box<Invocation>) -> Result<(), Box<Invocation>> {
        let mut state = self.state.lock();
        if state.dead || state.queued.is_some() {
            return Err(invocation);
        }
        let now = Instant::now();
        state.queued = Some(invocation);
        state.queued_at = Some(now);
        let wake_deadline_task = state.wants_deadline_task_at(now + PICKUP_TIMEOUT);
        drop(state);
        self.next_ready.notify_one();
        if wake_deadline_task {
            self.deadline_armed.notify_one();
        }
        Ok(())
    }

    /// Long-polls for the next invocation (`/next`).
    pub async fn next(self: &Arc<Self>) -> Result<Handout, StateError> {
        loop {
            {
                let mut state = self.state.lock();
                if state.dead {
                    return Err(StateError::Dead);
                }
                if state.active.is_some() {
                    return Err(StateError::Busy);
                }
                if let Some(invocation) = state.queued.take() {
                    let now = Instant::now();
                    let init_duration = (!state.initialized).then(|| now - self.spawned);
                    state.initialized = true;
                    let timeout = self.function.spec.timeout;
                    state.active = Some(Active {
                        request_id: invocation.request_id.clone(),
                        reply: Some(invocation.reply),
                        started: now,
                        init_duration,
                        responding: false,
                        deadline: now + timeout,
                    });
                    let wake_deadline_task = state.wants_deadline_task_at(now + timeout);
                    drop(state);
                    if wake_deadline_task {
                        self.deadline_armed.notify_one();
                    }
                    logs::start(&self.function.spec.name, &invocation.request_id);
                    let deadline = SystemTime::now() + timeout;
                    return Ok(Handout {
                        request_id: invocation.request_id,
                        event: invocation.event,
                        deadline_ms: ids::epoch_millis(deadline),
                        trace_id: invocation.trace_id,
                        client_context: invocation.client_context,
                    });
                }
                state.initialized = true;
            }
            self.next_ready.notified().await;
        }
    }

    /// A `/response` or `/error` for `request_id` begins; at most one at a time.
    pub fn begin_result(&self, request_id: &str) -> Result<(), StateError> {
        let mut state = self.state.lock();
        let dead = state.dead;
        match &mut state.active {
            Some(active) if active.request_id == request_id => {
                if active.responding {
                    return Err(StateError::AlreadyResponding);
                }
                active.responding = true;
                Ok(())
            }
            _ if dead => Err(StateError::Dead),
            _ => Err(StateError::UnknownRequest),
        }
    }

    /// The result arrived badly (the connection broke): the invocation may
    /// still be finished by another call, the deadline or the exit.
    pub fn abandon_result(&self, request_id: &str) {
        let mut state = self.state.lock();
        if let Some(active) = &mut state.active {
            if active.request_id == request_id {
                active.responding = false;
            }
        }
    }

    /// Sends the start of a streamed result to the waiting request; the
    /// invocation runs on until [`FunctionInstance::finish`].
    pub fn stream_started(&self, request_id: &str, outcome: Outcome) {
        let reply = {
            let mut state = self.state.lock();
            match &mut state.active {
                Some(active) if active.request_id == request_id => active.reply.take(),
                _ => None,
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }

    /// The invocation `request_id` is over; `outcome` (if not already sent)
    /// goes to the waiting request, and the instance goes back to its pool.
    pub fn finish(self: &Arc<Self>, request_id: &str, outcome: Option<Outcome>) {
        let active = {
            let mut state = self.state.lock();
            match &state.active {
                Some(active) if active.request_id == request_id => state.active.take(),
                _ => None,
            }
        };
        let Some(mut active) = active else {
            return;
        };
        let reply = active.reply.take();
        self.report(&active);
        match self.pool.upgrade() {
            Some(pool) => pool.release(self),
            None => self.kill(),
        }
        // Only now: the waiting request runs on another thread at once, and
        // its client's next request must find the instance back in the pool.
        if let (Some(reply), Some(outcome)) = (reply, outcome) {
            let _ = reply.send(outcome);
        }
    }

    /// `/init/error`: the runtime could not start; the instance is done.
    pub fn init_failed(&self, error: Bytes) -> Result<(), StateError> {
        {
            let mut state = self.state.lock();
            if state.initialized {
                return Err(StateError::Initialized);
            }
            state.init_error = Some(error);
        }
        self.kill();
        Ok(())
    }

    /// Kills the process group (the exit is handled by the exit watcher).
    pub fn kill(&self) {
        self.kill_group_once_dead();
        self.next_ready.notify_one();
        self.deadline_armed.notify_one();
    }

    /// Times invocations out, and runtimes that do not ask for a queued
    /// event. One task per instance: it sleeps until the next deadline and
    /// then looks again, so an invocation that ends in time costs it
    /// nothing; it waits for a notification only while the instance is idle.
    async fn enforce_deadlines(self: Arc<Self>) {
        loop {
            let deadline = {
                let mut state = self.state.lock();
                if state.dead {
                    return;
                }
                let deadline = match (&state.active, &state.queued, state.queued_at) {
                    (Some(active), _, _) => {
                        Some((active.deadline, active.request_id.clone(), false))
                    }
                    (None, Some(queued), Some(at)) => {
                        Some((at + PICKUP_TIMEOUT, queued.request_id.clone(), true))
                    }
                    _ => None,
                };
                state.deadline_task_until = deadline.as_ref().map(|(at, _, _)| *at);
                deadline
            };
            match deadline {
                None => self.deadline_armed.notified().await,
                Some((deadline, request_id, pickup)) => {
                    if deadline > Instant::now() {
                        tokio::select! {
                            () = tokio::time::sleep_until(deadline.into()) => {}
                            () = self.deadline_armed.notified() => {}
                        }
                    } else if pickup {
                        self.not_picked_up(&request_id);
                    } else {
                        self.time_out(&request_id);
                    }
                }
            }
        }
    }

    /// The runtime did not ask for the queued invocation `request_id` in
    /// time: the instance is killed, and its exit fails the invocation.
    fn not_picked_up(&self, request_id: &str) {
        let initialized = {
            let state = self.state.lock();
            let still_queued = state.active.is_none()
                && state
                    .queued
                    .as_ref()
                    .is_some_and(|queued| queued.request_id == request_id);
            if !still_queued || state.dead {
                return;
            }
            state.initialized
        };
        let waited = PICKUP_TIMEOUT.as_secs_f64() * 1000.0;
        let text = if initialized {
            format!("the runtime did not ask for its next event within {waited:.0} ms; stopping it")
        } else {
            format!("INIT_REPORT Init Duration: {waited:.2} ms\tPhase: init\tStatus: timeout")
        };
        logs::line(&self.function.spec.name, &text);
        self.kill();
    }

    /// Marks the instance dead and kills its process group, unless its
    /// leader was already reaped (then the group id may name strangers).
    fn kill_group_once_dead(&self) {
        let mut state = self.state.lock();
        state.dead = true;
        if !state.reaped {
            // Under the lock: the exit watcher sets `reaped` under it too,
            // just after the reap, so the group is still ours here.
            os::kill_process_group(self.pid);
        }
    }

    /// True while the instance can take invocations.
    pub fn is_alive(&self) -> bool {
        !self.state.lock().dead
    }

    /// Where the instance is in its life, for the metrics.
    pub fn phase(&self) -> Phase {
        let state = self.state.lock();
        if state.dead {
            Phase::Stopping
        } else if state.initialized {
            Phase::Started
        } else {
            Phase::Starting
        }
    }

    /// The deadline of `request_id` passed.
    fn time_out(self: &Arc<Self>, request_id: &str) {
        let active = {
            let mut state = self.state.lock();
            match &state.active {
                Some(active) if active.request_id == request_id => {
                    state.dead = true;
                    state.active.take()
                }
                _ => None,
            }
        };
        let Some(mut active) = active else {
            return;
        };
        self.read_max_memory(true);
        self.kill_group_once_dead();
        let spec = &self.function.spec;
        let message = logs::timed_out_message(request_id, spec.timeout);
        logs::line(&spec.name, &message);
        let reply = active.reply.take();
        self.report(&active);
        // Out of the pool before the waiting request (on another thread)
        // answers, so the client's next request does not count it.
        self.leave_pool();
        if let Some(reply) = reply {
            let _ = reply.send(Outcome::Failed(Failure::timeout(&message)));
        }
    }

    /// The process exited (`status` as text, e.g. `exit status: 1`).
    fn exited(self: &Arc<Self>, status: String) {
        if let Some(task) = self.api_task.lock().take() {
            task.abort();
        }
        let (active, queued, init_error) = {
            let mut state = self.state.lock();
            state.dead = true;
            state.reaped = true;
            (
                state.active.take(),
                state.queued.take(),
                state.init_error.take(),
            )
        };
        self.deadline_armed.notify_one();
        // The leader is reaped: its group id may be reused, so what it left
        // running (in its group or not) is found and ended by the reaper,
        // as children of the server (a child subreaper).
        reaper::ended(self.pid, &self.mark);
        let status = status.replace("exit status: ", "exit status ");
        let name = &self.function.spec.name;
        let mut failed = None;
        if let Some(mut active) = active {
            let failure = Failure::exited(&active.request_id, &status);
            logs::line(name, &failure.log_line(&active.request_id));
            failed = active.reply.take().map(|reply| (reply, failure));
            self.report(&active);
        }
        if let Some(invocation) = queued {
            let failure = match init_error {
                Some(error) => Failure::init(error),
                None => Failure::exited(&invocation.request_id, &status),
            };
            logs::line(
                name,
                &format!(
                    "INIT_REPORT Phase: init\tStatus: error\tError Type: {}",
                    failure.error_type
                ),
            );
            let _ = invocation.reply.send(Outcome::Failed(failure));
        }
        tracing::debug!(function = %name, pid = self.pid, %status, "instance exited");
        // Out of the pool before the waiting request (on another thread)
        // answers, so the client's next request does not count it.
        self.leave_pool();
        if let Some((reply, failure)) = failed {
            let _ = reply.send(Outcome::Failed(failure));
        }
    }

    fn leave_pool(self: &Arc<Self>) {
        if let Some(pool) = self.pool.upgrade() {
            pool.remove(self);
        }
    }

    /// The process's peak memory in MB: read from `/proc` at most once a
    /// second (or now, if `fresh`), else the last value read.
    fn read_max_memory(&self, fresh: bool) -> u64 {
        {
            let mut last = self.max_memory_read.lock();
            let due = fresh || last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
            if !due {
                return self.max_memory_mb.load(Ordering::Relaxed);
            }
            *last = Some(Instant::now());
        }
        let read = logs::max_memory_mb(self.pid);
        self.max_memory_mb
            .fetch_max(read, Ordering::Relaxed)
            .max(read)
    }

    fn report(&self, active: &Active) {
        let spec = &self.function.spec;
        logs::end(
            &spec.name,
            &logs::Report {
                request_id: &active.request_id,
                duration: active.started.elapsed(),
                memory_mb: spec.memory_mb,
                max_memory_mb: self.read_max_memory(false),
                init_duration: active.init_duration,
            },
        );
    }
}
