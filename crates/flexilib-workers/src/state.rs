//! A JS thread's bookkeeping: the requests in flight (their answers, CPU
//! time and `waitUntil` count), timers, host operations and fetched
//! bodies, each owned by the request that started it, and the end of a
//! request, which cancels what it owns.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flexilib_sdk::{BodyWriter, Responder, Response};

use crate::fetch::BodyRx;
use crate::shared::{Msg, OpResult, ReplyTx, ServiceAnswer, Shared};

/// How long `waitUntil` work may run on after the response (workerd's 30 s).
pub(crate) const WAIT_UNTIL_LIMIT: Duration = Duration::from_secs(30);

/// How a request is answered.
pub(crate) enum Answer {
    /// Not yet.
    Pending(Responder),
    /// Its head is sent; its body is being written.
    Streaming(BodyWriter),
    /// A scheduled event fired by `[triggers] crons` (this cron): nobody
    /// waits for the answer, but the event lives until it comes.
    Cron(String),
    /// A call through a service binding: the caller waits for the answer.
    Service(ReplyTx),
    /// A call through a service binding answered with a streamed body:
    /// the body is gathered, and the whole answer sent at its end.
    ServiceStream(ServiceAnswer, ReplyTx),
    /// An open WebSocket (a request of its own): answered when it closes.
    Socket(Box<crate::socket::Socket>),
}

impl Answer {
    /// Answers with `response` a request that has not answered yet (a
    /// failure the runtime answers for it); a body being streamed is
    /// dropped, which aborts it.
    pub(crate) fn fail_with(self, response: Response) {
        match self {
            Answer::Pending(responder) => responder.complete(response),
            Answer::Service(reply) => {
                let _ = reply.send(ServiceAnswer::from_sdk(&response));
            }
            Answer::Streaming(_)
            | Answer::Cron(_)
            | Answer::ServiceStream(..)
            | Answer::Socket(_) => {}
        }
    }
}

/// A request, from its arrival until its answer is complete and its
/// `waitUntil` work done.
pub(crate) struct Call {
    /// `None` once answered.
    pub(crate) answer: Option<Answer>,
    /// CPU time its JavaScript used.
    pub(crate) cpu: Duration,
    /// `waitUntil` promises not yet settled.
    pub(crate) waits: u32,
    /// When it was answered.
    pub(crate) answered_at: Option<Instant>,
    /// Its unit of the requests in flight (`Counts::calls`).
    pub(crate) _counted: crate::gauges::Held,
}

/// One isolate's bookkeeping.
pub(crate) struct State {
    pub(crate) shared: Arc<Shared>,
    /// The JS thread's own sender, for host work to answer on.
    pub(crate) tx: Sender<Msg>,
    /// Which isolate of the thread this is (messages of an earlier one are
    /// dropped).
    pub(crate) generation: u64,
    /// Requests in flight, by number.
    pub(crate) calls: HashMap<u64, Call>,
    pub(crate) next_call: u64,
    /// When each timer is due (cancelled ones stay until popped).
    pub(crate) timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Live timers and their request.
    pub(crate) timer_owner: HashMap<u64, u64>,
    /// Host operations in flight and their request.
    pub(crate) ops: HashMap<u64, u64>,
    /// Bodies of fetched responses: their request and channel.
    pub(crate) bodies: HashMap<u64, (u64, BodyRx)>,
    pub(crate) next_body: u64,
    /// The request whose JavaScript runs now (0: none, global scope).
    pub(crate) current: u64,
    /// For `performance.now()`.
    pub(crate) started: Instant,
    /// Timers and ops of finished requests, for the prelude to drop.
    pub(crate) forgotten: (Vec<u64>, Vec<u64>),
    /// This isolate reported its Durable Objects (`objectsLive`): the
    /// count goes back to 0 when it ends.
    pub(crate) reports_objects: bool,
}

impl State {
    /// The bookkeeping of isolate `generation`, empty.
    pub(crate) fn new(shared: Arc<Shared>, tx: Sender<Msg>, generation: u64) -> State {
        State {
            shared,
            tx,
            generation,
            calls: HashMap::new(),
            next_call: 0,
            timers: BinaryHeap::new(),
            timer_owner: HashMap::new(),
            ops: HashMap::new(),
            bodies: HashMap::new(),
            next_body: 0,
            current: 0,
            started: Instant::now(),
            forgotten: (Vec::new(), Vec::new()),
            reports_objects: false,
        }
    }

    /// No request in flight.
    pub(crate) fn idle(&self) -> bool {
        self.calls.is_empty()
    }

    /// The next timer due at `now` and its request.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(u64, u64)> {
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

    /// When the next timer is due.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// When the next answered request's `waitUntil` work runs out of time.
    pub(crate) fn next_wait_limit(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter(|c| c.waits > 0)
            .filter_map(|c| c.answered_at)
            .min()
            .map(|at| at + WAIT_UNTIL_LIMIT)
    }

    /// Takes request `call`'s answer (to give it), noting when.
    pub(crate) fn take_answer(&mut self, call: u64) -> Option<Answer> {
        let call = self.calls.get_mut(&call)?;
        let answer = call.answer.take();
        if answer.is_some() {
            call.answered_at = Some(Instant::now());
        }
        answer
    }

    /// Ends request `call` if it has answered and has no `waitUntil` work.
    pub(crate) fn finish_if_done(&mut self, call: u64) {
        if self
            .calls
            .get(&call)
            .is_some_and(|c| c.answer.is_none() && c.waits == 0)
        {
            self.finish(call);
        }
    }

    /// Ends request `call`: its timers, host operations and fetched
    /// bodies are cancelled. Returns it (an answer not given is dropped by
    /// the caller).
    pub(crate) fn finish(&mut self, call: u64) -> Option<Call> {
        let ended = self.calls.remove(&call)?;
        let (timers, ops) = &mut self.forgotten;
        self.timer_owner.retain(|timer, owner| {
            let keep = *owner != call;
            if !keep {
                timers.push(*timer);
            }
            keep
        });
        self.ops.retain(|op, owner| {
            let keep = *owner != call;
            if !keep {
                ops.push(*op);
            }
            keep
        });
        self.bodies.retain(|_, (owner, _)| *owner != call);
        if self.calls.is_empty() {
            self.timers.clear();
        }
        Some(ended)
    }

    /// Whether JavaScript running now may start host work: only for a
    /// live request.
    pub(crate) fn may_start(&self) -> bool {
        self.calls.contains_key(&self.current)
    }

    /// Runs `future` on the I/O runtime; its result settles op `op`.
    pub(crate) fn spawn(
        &mut self,
        op: u64,
        future: impl Future<Output = OpResult> + Send + 'static,
    ) {
        if !self.may_start() {
            return;
        }
        self.ops.insert(op, self.current);
        let tx = self.tx.clone();
        let generation = self.generation;
        self.shared.handle.spawn(async move {
            let result = future.await;
            let _ = tx.send(Msg::Done(generation, op, result));
        });
    }

    /// Runs blocking `work` (SQLite) off the JS thread; its result settles op `op`.
    pub(crate) fn spawn_blocking(
        &mut self,
        op: u64,
        work: impl FnOnce() -> OpResult + Send + 'static,
    ) {
        if !self.may_start() {
            return;
        }
        self.ops.insert(op, self.current);
        let tx = self.tx.clone();
        let generation = self.generation;
        self.shared.handle.spawn_blocking(move || {
            let _ = tx.send(Msg::Done(generation, op, work()));
        });
    }
}

/// Answers request `call` with `response` if it has not answered (or
/// aborts its streamed body), and ends it if nothing else runs for it.
pub(crate) fn answer_failed(state: &Rc<RefCell<State>>, call: u64, response: Response) {
    let answer = state.borrow_mut().take_answer(call);
    if let Some(answer) = answer {
        answer.fail_with(response);
    }
    state.borrow_mut().finish_if_done(call);
}
