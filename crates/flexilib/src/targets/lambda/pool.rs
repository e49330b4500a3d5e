//! The instances of one function.
//!
//! An invocation takes the most recently used idle instance of the current
//! generation (warm), preferring one whose Runtime API runs on the asking
//! core thread (no other thread of the server is woken), or starts one (cold) while fewer than `concurrency`
//! are running; otherwise it waits in a FIFO queue of at most `queue`
//! requests (for at most the function's timeout) or is throttled (429).
//! An instance is idle again once its result is in; idle instances are
//! stopped after `idle`.
//!
//! Hot reload is by generation: a change of the function's code starts a
//! new generation. Idle instances of older generations are stopped at
//! once, busy ones as soon as their invocation ends; only instances of the
//! current generation count against `concurrency`, so requests arriving
//! during a swap start new instances instead of being throttled.

use parking_lot::{Mutex, MutexGuard};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use tokio::sync::oneshot;

use super::instance::{FunctionInstance, Invocation, Owner, Phase};
use super::runtime_api;
use super::{dependencies, ids, logs, Failure, Function, Outcome};
use crate::handlers::CallWatch;

/// How a request waits when every instance is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// In the function's bounded queue, then throttled.
    Queue,
    /// As long as it takes, behind every queued request (asynchronous
    /// invocations, bounded by the Invoke API's event queue).
    Background,
}

/// What a waiting request is given.
enum Grant {
    /// An idle instance.
    Instance(Arc<FunctionInstance>),
    /// Room to start an instance of this generation.
    Slot(u64),
}

#[derive(Default)]
struct PoolState {
    generation: u64,
    /// Idle instances with the time they became idle; the last is the warmest.
    idle: Vec<(Arc<FunctionInstance>, Instant)>,
    /// Live instances of the current generation (starting, busy or idle).
    current: u32,
    /// Requests waiting (`Waiting::Queue`): served first.
    waiters: VecDeque<oneshot::Sender<Grant>>,
    /// Asynchronous invocations waiting (`Waiting::Background`): served
    /// when no request waits, so events never take a request's place in
    /// its queue.
    background: VecDeque<oneshot::Sender<Grant>>,
    /// Every live instance, by process id.
    instances: HashMap<u32, Weak<FunctionInstance>>,
    reaper: bool,
}

impl PoolState {
    /// The warmest idle instance whose Runtime API runs on the calling
    /// thread, else the warmest whose Runtime API's thread is not inside a
    /// library call, else (if `any`) the warmest.
    fn take_idle(&mut self, any: bool) -> Option<(Arc<FunctionInstance>, Instant)> {
        let here = std::thread::current().id();
        let idle = &self.idle;
        let at = idle
            .iter()
            .rposition(|(instance, _)| instance.home == Some(here))
            .or_else(|| {
                idle.iter().rposition(|(instance, _)| {
                    !instance.home_calls.as_ref().is_some_and(CallWatch::in_call)
                })
            })
            .or_else(|| any.then(|| idle.len().checked_sub(1)).flatten())?;
        Some(self.idle.remove(at))
    }

    /// The next waiter to serve: requests before asynchronous invocations.
    fn next_waiter(&mut self) -> Option<oneshot::Sender<Grant>> {
        self.waiters
            .pop_front()
            .or_else(|| self.background.pop_front())
    }
}

/// A function's instances by state and its queue, read when the admin
/// listener's `/metrics` is scraped ([`PoolShared::census`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Instances being started: a slot taken while the process is spawned
    /// (or the function's dependencies installed), or a process whose
    /// runtime has not asked for its first event yet.
    pub starting: u32,
    /// Instances running an invocation (of any generation).
    pub busy: u32,
    /// Instances waiting for an invocation.
    pub idle: u32,
    /// Instances killed (idle too long, old code, deadline) whose process
    /// has not exited yet.
    pub stopping: u32,
    /// Invocations waiting for an instance: requests in the function's
    /// queue and asynchronous Invoke API events.
    pub queued: u32,
    /// `concurrency=`: the most instances of the current code at once.
    pub limit: u32,
}

/// Why no instance could be had.
enum AcquireError {
    Throttled,
    Spawn(std::io::Error),
    /// The function's dependencies could not be installed (the message says why).
    Dependencies(String),
}

/// A slot counted in `current` for an instance not started yet: given back
/// if dropped armed (a failure, or a request that stopped waiting).
struct SlotGuard<'a> {
    pool: &'a Arc<PoolShared>,
    generation: Option<u64>,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(generation) = self.generation.take() {
            self.pool.give_back(Grant::Slot(generation));
        }
    }
}

/// A function's pool of instances.
pub struct PoolShared {
    /// The function.
    pub function: Arc<Function>,
    state: Mutex<PoolState>,
}

impl PoolShared {
    /// An empty pool.
    pub fn new(function: Function) -> Arc<Self> {
        Arc::new(Self {
            function: Arc::new(function),
            state: Mutex::new(PoolState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock()
    }

    /// Runs one invocation and returns how it ended.
    pub async fn invoke(
        self: &Arc<Self>,
        event: Bytes,
        client_context: Option<HeaderValue>,
        waiting: Waiting,
    ) -> Outcome {
        self.invoke_as(ids::request_id(), event, client_context, waiting)
            .await
    }

    /// [`PoolShared::invoke`] with a given request id.
    pub async fn invoke_as(
        self: &Arc<Self>,
        request_id: String,
        event: Bytes,
        client_context: Option<HeaderValue>,
        waiting: Waiting,
    ) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        let mut invocation = Box::new(Invocation {
            request_id: request_id.clone(),
            event,
            trace_id: ids::trace_id(std::time::SystemTime::now()),
            client_context,
            reply,
        });
        loop {
            let instance = match self.acquire(waiting).await {
                Ok(instance) => instance,
                Err(AcquireError::Throttled) => return Outcome::Throttled,
                Err(AcquireError::Dependencies(message)) => {
                    return Outcome::Failed(Failure::new(
                        "Runtime.DependencyInstallFailed",
                        &format!("RequestId: {request_id} Error: {message}"),
                    ));
                }
                Err(AcquireError::Spawn(error)) => {
                    let failure = Failure::spawn(&request_id, &error);
                    logs::line(&self.function.spec.name, &failure.log_line(&request_id));
                    return Outcome::Failed(failure);
                }
            };
            // An instance that died meanwhile gives the invocation back.
            match instance.assign(invocation) {
                Ok(()) => break,
                Err(back) => invocation = back,
            }
        }
        outcome
            .await
            .unwrap_or_else(|_| Outcome::Failed(Failure::exited(&request_id, "instance lost")))
    }

    async fn acquire(
        self: &Arc<Self>,
        waiting: Waiting,
    ) -> Result<Arc<FunctionInstance>, AcquireError> {
        let spec = &self.function.spec;
        // Decided under the lock, acted on without it.
        enum Next {
            Start(u64),
            Wait(GrantReceiver),
        }
        let next = {
            let mut state = self.lock();
            // An instance whose Runtime API waits for a library call to
            // return is taken only when no other can be started.
            loop {
                let any = state.current >= spec.concurrency;
                let Some((instance, _)) = state.take_idle(any) else {
                    break;
                };
                if instance.generation == state.generation && instance.is_alive() {
                    return Ok(instance);
                }
                instance.kill();
            }
            if state.current < spec.concurrency {
                state.current += 1;
                Next::Start(state.generation)
            } else {
                let (sender, receiver) = oneshot::channel();
                match waiting {
                    Waiting::Queue => {
                        state.waiters.retain(|waiter| !waiter.is_closed());
                        if state.waiters.len() >= spec.queue as usize {
                            return Err(AcquireError::Throttled);
                        }
                        state.waiters.push_back(sender);
                        tracing::debug!(
                            function = %spec.name,
                            waiting = state.waiters.len(),
                            "invocation queued for a busy instance"
                        );
                    }
                    Waiting::Background => state.background.push_back(sender),
                }
                Next::Wait(GrantReceiver {
                    receiver: Some(receiver),
                    pool: Arc::clone(self),
                })
            }
        };
        let receiver = match next {
            Next::Wait(receiver) => receiver,
            Next::Start(generation) => return self.start_with_dependencies(generation).await,
        };
        let wait = match waiting {
            Waiting::Queue => Some(spec.timeout),
            Waiting::Background => None,
        };
        match receiver.wait(wait).await {
            Some(Grant::Instance(instance)) => Ok(instance),
            Some(Grant::Slot(generation)) => self.start_with_dependencies(generation).await,
            None => Err(AcquireError::Throttled),
        }
    }

    /// [`PoolShared::start`] once the function's dependencies are
    /// installed (see [`dependencies`]); the slot goes back if they cannot
    /// be, or if the request stops waiting.
    async fn start_with_dependencies(
        self: &Arc<Self>,
        generation: u64,
    ) -> Result<Arc<FunctionInstance>, AcquireError> {
        let mut slot = SlotGuard {
            pool: self,
            generation: Some(generation),
        };
        let environment = dependencies::prepare(&self.function.spec)
            .await
            .map_err(AcquireError::Dependencies)?;
        slot.generation = None;
        self.start(generation, &environment)
    }

    /// Starts an instance in a slot already counted in `current`, with
    /// `environment` added to the function's.
    fn start(
        self: &Arc<Self>,
        generation: u64,
        environment: &[(String, String)],
    ) -> Result<Arc<FunctionInstance>, AcquireError> {
        // The instance's process, pipes, Runtime API socket and tasks belong
        // to the control runtime, not to the I/O thread asking: a library
        // call blocking that thread must not stall them.
        let _control = crate::control::handle().enter();
        let (listener, address) = match runtime_api::bind() {
            Ok(bound) => bound,
            Err(error) => {
                self.give_back(Grant::Slot(generation));
                return Err(AcquireError::Spawn(error));
            }
        };
        let owner: Weak<dyn Owner> = Arc::downgrade(self) as Weak<dyn Owner>;
        match FunctionInstance::spawn(&self.function, generation, address, owner, environment) {
            Ok((instance, child)) => {
                let api = crate::control::home().spawn(runtime_api::serve(
                    listener,
                    Arc::clone(&instance),
                    instance.runtime_api_shutdown(),
                ));
                instance.set_runtime_api_task(api.abort_handle());
                let start_reaper = {
                    let mut state = self.lock();
                    state
                        .instances
                        .insert(instance.pid, Arc::downgrade(&instance));
                    !std::mem::replace(&mut state.reaper, true)
                };
                FunctionInstance::watch(&instance, child);
                if start_reaper {
                    tokio::spawn(reap(Arc::downgrade(self), self.function.spec.idle));
                }
                Ok(instance)
            }
            Err(error) => {
                self.give_back(Grant::Slot(generation));
                Err(AcquireError::Spawn(error))
            }
        }
    }

    /// A grant a waiter will not use goes back.
    fn give_back(&self, grant: Grant) {
        match grant {
            Grant::Instance(instance) => self.release(&instance),
            Grant::Slot(generation) => {
                let mut state = self.lock();
                if generation == state.generation {
                    state.current = state.current.saturating_sub(1);
                    self.grant_slots(&mut state);
                }
            }
        }
    }

    /// Lets waiters start instances while there is room.
    fn grant_slots(&self, state: &mut PoolState) {
        while state.current < self.function.spec.concurrency {
            let Some(waiter) = state.next_waiter() else {
                return;
            };
            if waiter.send(Grant::Slot(state.generation)).is_ok() {
                state.current += 1;
            }
        }
    }

    /// The function's code changed: later invocations go to new instances.
    pub fn new_generation(&self, reason: &str) {
        let stale = {
            let mut state = self.lock();
            state.generation += 1;
            state.current = 0;
            let stale = std::mem::take(&mut state.idle);
            self.grant_slots(&mut state);
            stale
        };
        for (instance, _) in &stale {
            instance.kill();
        }
        tracing::info!(
            function = %self.function.spec.name,
            reason,
            stopped_idle = stale.len(),
            "new code: new invocations start new instances"
        );
    }

    /// Its instances by state now. Takes the pool's lock only to copy the
    /// list of instances out (as an invocation does), then each instance's
    /// own lock once; nothing on the request path is added.
    pub fn census(&self) -> Census {
        let (instances, reserved, queued) = {
            let state = self.lock();
            let instances: Vec<(Arc<FunctionInstance>, bool)> = state
                .instances
                .values()
                .filter_map(Weak::upgrade)
                .map(|instance| {
                    let idle = state
                        .idle
                        .iter()
                        .any(|(idle, _)| Arc::ptr_eq(idle, &instance));
                    (instance, idle)
                })
                .collect();
            // `current` counts the current generation's instances until
            // they are removed, and the slots of instances not spawned yet.
            let spawned = instances
                .iter()
                .filter(|(instance, _)| instance.generation == state.generation)
                .count();
            let reserved = (state.current as usize).saturating_sub(spawned);
            let queued = state
                .waiters
                .iter()
                .filter(|waiter| !waiter.is_closed())
                .count()
                + state.background.len();
            (instances, reserved, queued)
        };
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut census = Census {
            starting: count(reserved),
            queued: count(queued),
            limit: self.function.spec.concurrency,
            ..Census::default()
        };
        for (instance, idle) in instances {
            let slot = match (instance.phase(), idle) {
                (Phase::Stopping, _) => &mut census.stopping,
                (_, true) => &mut census.idle,
                (Phase::Starting, false) => &mut census.starting,
                (Phase::Started, false) => &mut census.busy,
            };
            *slot = slot.saturating_add(1);
        }
        census
    }

    /// Stops idle instances unused for `idle`; true while the pool lives.
    fn reap_idle(&self, idle: Duration) {
        let expired: Vec<Arc<FunctionInstance>> = {
            let mut state = self.lock();
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.idle)
                .into_iter()
                .partition(|(_, since)| since.elapsed() >= idle);
            state.idle = kept;
            expired.into_iter().map(|(instance, _)| instance).collect()
        };
        for instance in expired {
            tracing::debug!(function = %self.function.spec.name, pid = instance.pid, "idle instance stopped");
            instance.kill();
        }
    }
}

impl Owner for PoolShared {
    /// An instance finished its invocation and can take another.
    fn release(&self, instance: &Arc<FunctionInstance>) {
        let mut state = self.lock();
        if instance.generation != state.generation || !instance.is_alive() {
            drop(state);
            instance.kill();
            return;
        }
        let mut grant = Grant::Instance(Arc::clone(instance));
        while let Some(waiter) = state.next_waiter() {
            match waiter.send(grant) {
                Ok(()) => return,
                Err(back) => grant = back,
            }
        }
        state.idle.push((Arc::clone(instance), Instant::now()));
    }

    /// An instance died (once per instance; later calls do nothing).
    fn remove(&self, instance: &Arc<FunctionInstance>) {
        let mut state = self.lock();
        if state.instances.remove(&instance.pid).is_none() {
            return;
        }
        state.idle.retain(|(idle, _)| !Arc::ptr_eq(idle, instance));
        if instance.generation == state.generation {
            state.current = state.current.saturating_sub(1);
            self.grant_slots(&mut state);
        }
    }
}

impl Drop for PoolShared {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        for instance in state.instances.values().filter_map(Weak::upgrade) {
            instance.kill();
        }
    }
}

/// The idle-reaping task of a pool; ends with the pool.
async fn reap(pool: Weak<PoolShared>, idle: Duration) {
    let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(10));
    loop {
        tokio::time::sleep(tick).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        pool.reap_idle(idle);
    }
}

/// A place in the queue. A grant that arrives as the wait gives up (time
/// out, or the request is dropped) goes back to the pool, never lost.
struct GrantReceiver {
    receiver: Option<oneshot::Receiver<Grant>>,
    pool: Arc<PoolShared>,
}

impl GrantReceiver {
    /// Waits for a grant, for at most `limit` (`None`: as long as it takes).
    async fn wait(mut self, limit: Option<Duration>) -> Option<Grant> {
        let receiver = self.receiver.as_mut()?;
        let grant = match limit {
            Some(limit) => tokio::time::timeout(limit, receiver).await.ok()?,
            None => receiver.await,
        };
        self.receiver = None;
        grant.ok()
    }
}

impl Drop for GrantReceiver {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if let Ok(grant) = receiver.try_recv() {
                self.pool.give_back(grant);
            }
        }
    }
}
