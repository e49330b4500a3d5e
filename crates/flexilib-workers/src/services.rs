//! Service bindings: `[[services]] binding = "X", service = "name"` gives
//! a worker `env.X.fetch(…)`, which reaches the worker whose wrangler
//! `name` is `name`, on whatever route of this server it is mounted, in
//! process: the request is handed to one of that worker's JS threads as
//! an HTTP request would be, and its answer comes back through a channel,
//! without the network or the server's HTTP path.
//!
//! Every worker instance with a `name` registers its [`Endpoint`] here; the
//! registry holds it weakly, so a retired instance is gone with its last
//! user, and a rebuilt one (hot reload) takes the name over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use crate::queue::Queue;
use crate::shared::{Incoming, Msg, ServiceAnswer};

/// A worker instance as services see it: its JS threads.
pub struct Endpoint {
    route: String,
    threads: Vec<(mpsc::Sender<Msg>, Arc<Queue>)>,
    next: AtomicUsize,
}

/// Why a service call failed, as the caller's `fetch` rejects.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No worker of that name runs on this server.
    #[error("service binding: no worker named \"{0}\" runs on this server (its wrangler `name`)")]
    Unknown(String),
    /// Its JS threads are busy past their queue, or gone.
    #[error("service binding: the worker \"{0}\" is overloaded")]
    Busy(String),
    /// It never answered (its JS runtime was reset, its instance retired).
    #[error("service binding: the worker \"{0}\" did not answer")]
    NoAnswer(String),
}

fn registry() -> &'static Mutex<HashMap<String, Weak<Endpoint>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<Endpoint>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

impl Endpoint {
    /// The endpoint of the worker on `route` with these JS threads.
    pub fn new(route: &str, threads: Vec<(mpsc::Sender<Msg>, Arc<Queue>)>) -> Self {
        Endpoint {
            route: route.to_string(),
            threads,
            next: AtomicUsize::new(0),
        }
    }
}

/// Makes `endpoint` the worker called `name`; says which route had the
/// name before if another route's worker did (the last built wins).
pub fn register(name: &str, endpoint: &Arc<Endpoint>) -> Option<String> {
    let mut registry = registry().lock().unwrap_or_else(PoisonError::into_inner);
    registry.retain(|_, weak| weak.strong_count() > 0);
    registry
        .insert(name.to_string(), Arc::downgrade(endpoint))
        .and_then(|weak| weak.upgrade())
        .filter(|previous| previous.route != endpoint.route)
        .map(|previous| previous.route.clone())
}

/// How long a call to a Durable Object waits for the previous call to the
/// same object to end.
const OBJECT_CALL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Calls Durable Object `target` once the previous call to it has ended
/// (one lock per object, `Shared::object_locks`), on its home JS thread.
pub async fn call_object_in_turn(
    shared: &crate::shared::Shared,
    home: (mpsc::Sender<Msg>, Arc<Queue>),
    target: crate::shared::ObjectTarget,
    method: String,
    url: String,
    headers: Vec<String>,
    body: Vec<u8>,
) -> Result<ServiceAnswer, ServiceError> {
    let key = format!("{}:{}", target.binding, target.id);
    let lock = shared
        .object_locks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key.clone())
        .or_default()
        .clone();
    let turn = tokio::time::timeout(OBJECT_CALL_WAIT, lock.lock()).await;
    let result = match turn {
        Ok(_turn) => call_object(&home, target, method, url, headers, body).await,
        Err(_) => Err(ServiceError::NoAnswer(format!(
            "Durable Object {key}: the previous call to it did not end within {} s (a call to itself?)",
            OBJECT_CALL_WAIT.as_secs()
        ))),
    };
    let mut locks = shared
        .object_locks
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // Only the map's and this call's: nobody waits.
    if Arc::strong_count(&lock) <= 2 {
        locks.remove(&key);
    }
    result
}

/// Calls Durable Object `target` on its home JS thread (`home`), with a
/// request (`fetch`) or RPC arguments as JSON (`body`), and waits for its
/// answer.
async fn call_object(
    home: &(mpsc::Sender<Msg>, Arc<Queue>),
    target: crate::shared::ObjectTarget,
    method: String,
    url: String,
    headers: Vec<String>,
    body: Vec<u8>,
) -> Result<ServiceAnswer, ServiceError> {
    let (tx, queue) = home;
    let name = format!("Durable Object {}", target.id);
    if !queue.enter(body.len()) {
        return Err(ServiceError::Busy(name));
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let size = body.len();
    let incoming = Box::new(Incoming {
        method,
        url,
        headers,
        body,
        responder: None,
        service: Some(reply),
        object: Some(target),
        entry: None,
        scheduled: None,
    });
    if tx.send(Msg::Request(incoming)).is_err() {
        queue.leave(size);
        return Err(ServiceError::Busy(name));
    }
    answer.await.map_err(|_| ServiceError::NoAnswer(name))
}

/// Calls the worker called `service` with a request (to its default
/// export's `fetch`, or to what `entry` names), and waits for its answer.
pub async fn call(
    service: &str,
    entry: Option<crate::shared::Entry>,
    method: String,
    url: String,
    headers: Vec<String>,
    body: Vec<u8>,
) -> Result<ServiceAnswer, ServiceError> {
    let endpoint = registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(service)
        .and_then(Weak::upgrade)
        .ok_or_else(|| ServiceError::Unknown(service.to_string()))?;
    let index = endpoint.next.fetch_add(1, Ordering::Relaxed) % endpoint.threads.len().max(1);
    let (tx, queue) = endpoint
        .threads
        .get(index)
        .ok_or_else(|| ServiceError::Busy(service.to_string()))?;
    if !queue.enter(body.len()) {
        return Err(ServiceError::Busy(service.to_string()));
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let size = body.len();
    let incoming = Box::new(Incoming {
        method,
        url,
        headers,
        body,
        responder: None,
        service: Some(reply),
        object: None,
        entry,
        scheduled: None,
    });
    if tx.send(Msg::Request(incoming)).is_err() {
        queue.leave(size);
        return Err(ServiceError::Busy(service.to_string()));
    }
    // The endpoint is not held while waiting: a retired callee can go.
    drop(endpoint);
    answer
        .await
        .map_err(|_| ServiceError::NoAnswer(service.to_string()))
}
