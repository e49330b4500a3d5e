//! Cloudflare Workers emulation for FlexiLib, as an ABI-2 handler library
//! built only on the public SDK.
//!
//! `/app = worker:app.js` in `proxy.ini` (shorthand for this library with
//! `script=app.js`) runs an unmodified module worker
//! (`export default { fetch(request, env, ctx) { … } }`). Each route's
//! instance owns a few JS threads, each with its own QuickJS runtime and
//! the module loaded (an "isolate"); requests are handed to them through
//! channels and answered later (`Call::respond_later`) or streamed
//! (`BodyWriter`), so the server's I/O threads never wait on JavaScript.
//! Timers, outbound `fetch` and KV are host-side operations: a worker
//! awaiting one holds no handler slot and its thread runs other requests.
//! Each thread's queue is bounded ([`queue::Queue`]): past it a request is
//! answered 503 at once.
//!
//! The route's instance reports its isolates, requests in flight and
//! queued, open WebSockets and Durable Objects on the server's admin
//! listener ([`gauges`]; `flexilib_library_worker_…` in `/metrics`).

mod alarms;
mod compile;
mod config;
mod cpu;
mod crons;
mod d1;
mod engine;
mod fetch;
mod gauges;
mod kv;
mod loader;
mod modules;
mod natives;
mod node;
mod objects;
mod queue;
mod r2;
mod report;
mod services;
mod shared;
mod socket;
mod sql;
mod state;
mod storage_natives;
mod web;
mod websocket;
mod wrangler_keys;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use flexilib_sdk::{
    export_instance, Answer, Call, Gauges, Instance, InstanceConfig, Request, Response,
};

pub use config::{ConfigError, KvBinding, WorkerConfig};
use queue::Queue;
use shared::{Incoming, Msg, Shared};

/// A JS thread, as the handler side sees it.
struct Thread {
    tx: mpsc::Sender<Msg>,
    queue: Arc<Queue>,
}

/// A worker route: its JS threads, and the schedule of its crons.
pub struct Worker {
    threads: Vec<Thread>,
    _schedule: Option<crons::Schedule>,
    /// What service bindings reach, while this instance serves.
    _service: Option<Arc<services::Endpoint>>,
    /// What the JS threads share (its alarms stop when this instance is
    /// retired: a rebuilt instance schedules them again).
    shared: Arc<Shared>,
    next: AtomicUsize,
    default_cron: String,
    test_scheduled: bool,
}

impl Instance for Worker {
    /// Its isolates, the requests they run and wait to run, open
    /// WebSockets and Durable Objects (relaxed atomic loads: a scrape
    /// neither waits for nor slows a request).
    fn gauges(&self, gauges: &mut Gauges<'_>) {
        let counts = &self.shared.counts;
        gauges.set(
            "worker_isolates",
            "JS isolates (QuickJS runtimes with the worker's module loaded) serving the route",
            counts.isolates.get() as f64,
        );
        gauges.set(
            "worker_requests_in_flight",
            "Requests the worker's isolates run, until answered and their waitUntil work is done \
             (scheduled events, service binding and Durable Object calls, open WebSockets included)",
            counts.calls.get() as f64,
        );
        gauges.set(
            "worker_requests_queued",
            "Requests handed to a JS thread and not yet taken by it",
            self.threads
                .iter()
                .map(|t| t.queue.waiting())
                .sum::<usize>() as f64,
        );
        gauges.set(
            "worker_websockets_open",
            "WebSockets the worker holds open",
            counts.sockets.get() as f64,
        );
        gauges.set(
            "worker_durable_objects",
            "Durable Object instances constructed and alive in memory",
            counts.objects.load(Ordering::Relaxed) as f64,
        );
    }

    fn new(config: &InstanceConfig<'_>) -> Result<Self, String> {
        let started = Instant::now();
        let mut files = Vec::new();
        let loaded = WorkerConfig::load(
            config.route(),
            config.config_dir(),
            |key| config.option(key).map(str::to_string),
            &mut files,
        );
        for file in &files {
            config.depends_on(file);
        }
        let worker_config = loaded.map_err(|e| e.to_string())?;
        let crons = crons::parse(&worker_config.crons).map_err(|e| e.to_string())?;
        for warning in &worker_config.warnings {
            report::log(config.route(), &format!("warning: {warning}"));
        }
        let count = worker_config.threads;
        let route = worker_config.route.clone();
        let main = worker_config.main.clone();
        let default_cron = worker_config.crons.first().cloned().unwrap_or_default();
        let test_scheduled = worker_config.test_scheduled;
        let (queue_count, queue_bytes) = (worker_config.queue, worker_config.queue_bytes);
        let shared = Arc::new(Shared::new(worker_config)?);
        let shared_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut threads = Vec::with_capacity(count);
        let mut failure = None;
        for index in 0..count {
            let (tx, rx) = mpsc::channel();
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let thread_shared = shared.clone();
            let thread_tx = tx.clone();
            let queue = Arc::new(Queue::new(queue_count, queue_bytes));
            let thread_queue = queue.clone();
            if index == 0 {
                // Durable Objects live on the first JS thread.
                let _ = shared.objects_home.set((tx.clone(), queue.clone()));
            }
            let spawned = std::thread::Builder::new()
                .name(format!("worker-js-{index}"))
                .stack_size(16 * 1024 * 1024)
                .spawn(move || engine::run(thread_shared, thread_queue, rx, thread_tx, ready_tx));
            if let Err(e) = spawned {
                failure = Some(format!("cannot start a JS thread: {e}"));
                break;
            }
            match ready_rx.recv() {
                Ok((modules, result)) => {
                    if index == 0 {
                        for module in &modules {
                            config.depends_on(module);
                        }
                    }
                    if let Err(message) = result {
                        failure = Some(message);
                        break;
                    }
                    threads.push(Thread { tx, queue });
                }
                Err(_) => {
                    failure = Some("a JS thread stopped while loading the module".into());
                    break;
                }
            }
        }
        if let Some(message) = failure {
            for thread in &threads {
                let _ = thread.tx.send(Msg::Shutdown);
            }
            return Err(message);
        }
        crate::alarms::resume(&shared);
        let schedule = start_schedule(&route, crons, &threads)
            .map_err(|e| format!("cannot start the cron schedule: {e}"))?;
        let service = shared.config.name.as_deref().map(|name| {
            let endpoint = Arc::new(services::Endpoint::new(
                &route,
                threads.iter().map(|t| (t.tx.clone(), t.queue.clone())).collect(),
            ));
            if let Some(other) = services::register(name, &endpoint) {
                report::log(
                    &route,
                    &format!("warning: the worker name \"{name}\" was the route {other}'s: service bindings now reach this route"),
                );
            }
            endpoint
        });
        report::log(
            &route,
            &format!(
                "worker ready: {} ({count} JS thread{}, built in {:.1} ms, {:.1} ms before the JS threads)",
                main.display(),
                if count == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64() * 1000.0,
                shared_ms
            ),
        );
        Ok(Worker {
            threads,
            _schedule: schedule,
            _service: service,
            shared,
            next: AtomicUsize::new(0),
            default_cron,
            test_scheduled,
        })
    }

    fn handle(&self, request: &Request<'_>, call: Call) -> Answer {
        let target = request.target();
        let path = request.path();
        // Only on a route that asks for it, as `wrangler dev --test-scheduled`.
        let scheduled = (self.test_scheduled && path.ends_with("/__scheduled")).then(|| {
            request
                .query()
                .and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "cron")
                        .map(|(_, v)| v.into_owned())
                })
                .unwrap_or_else(|| self.default_cron.clone())
        });
        let host = request.header("host").unwrap_or("localhost");
        let url = format!("http://{host}{target}");
        let mut headers = Vec::with_capacity(request.header_count() * 2);
        for (name, value) in request.headers() {
            headers.push(name.to_string());
            headers.push(String::from_utf8_lossy(value).into_owned());
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len().max(1);
        let Some(thread) = self.threads.get(index) else {
            return unavailable("the worker has no JS thread\n").into();
        };
        let body = request.body();
        if !thread.queue.enter(body.len()) {
            return unavailable("the worker's request queue is full\n").into();
        }
        let (responder, answer) = call.respond_later();
        let incoming = Box::new(Incoming {
            method: request.method().to_string(),
            url,
            headers,
            body: body.to_vec(),
            responder: Some(responder),
            service: None,
            object: None,
            entry: None,
            scheduled,
        });
        if let Err(mpsc::SendError(Msg::Request(incoming))) = thread.tx.send(Msg::Request(incoming))
        {
            thread.queue.leave(incoming.body.len());
            if let Some(responder) = incoming.responder {
                responder.complete(unavailable("the worker's JS thread is gone\n"));
            }
        }
        answer
    }
}

/// Starts firing `crons` at the JS threads, round robin.
fn start_schedule(
    route: &str,
    crons: Vec<(String, croner::Cron)>,
    threads: &[Thread],
) -> std::io::Result<Option<crons::Schedule>> {
    let targets: Vec<(mpsc::Sender<Msg>, Arc<Queue>)> = threads
        .iter()
        .map(|t| (t.tx.clone(), t.queue.clone()))
        .collect();
    let next = AtomicUsize::new(0);
    let shown = route.to_string();
    crons::start(route, crons, move |cron| {
        let index = next.fetch_add(1, Ordering::Relaxed) % targets.len().max(1);
        let Some((tx, queue)) = targets.get(index) else {
            return;
        };
        if !queue.enter(0) {
            report::log(
                &shown,
                &format!("cron `{cron}` skipped: the JS thread's queue is full"),
            );
            return;
        }
        let incoming = Box::new(Incoming {
            method: "GET".into(),
            url: "http://localhost/cdn-cgi/handler/scheduled".into(),
            headers: Vec::new(),
            body: Vec::new(),
            responder: None,
            service: None,
            object: None,
            entry: None,
            scheduled: Some(cron.to_string()),
        });
        if tx.send(Msg::Request(incoming)).is_err() {
            queue.leave(0);
        }
    })
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The threads finish what they run (waitUntil work included, up to
        // a grace period) and exit by themselves: this may run on one of
        // them (the host frees an instance after its last completion).
        self.shared.alarms.retire();
        for thread in &self.threads {
            let _ = thread.tx.send(Msg::Shutdown);
        }
    }
}

/// 503 with a plain-text reason.
fn unavailable(reason: &'static str) -> Response {
    Response::ok(reason)
        .status(503)
        .header("content-type", "text/plain")
}

export_instance!(Worker);
