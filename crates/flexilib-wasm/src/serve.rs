//! One request, as `wasmtime serve` runs it: a fresh store and instance
//! (from the route's `ProxyPre`, in the pooling allocator), the request
//! handed to `wasi:http/incoming-handler#handle`, the response head sent as
//! soon as the guest sets it and its body streamed to the client as the
//! guest writes it, at the client's pace.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use flexilib_sdk::{BodyWriter, Responder, Response, WriteError};
use http_body_util::{BodyExt, Full};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::config::{Outbound, RouteConfig};
use crate::engine::Host;
use crate::guest::{GuestState, LimitExceeded};
use crate::log;
use crate::spin::SpinContext;

/// What every request of a route shares.
pub struct Shared {
    /// The host (engine, linker, runtime).
    pub host: &'static Host,
    /// The route's settings.
    pub config: RouteConfig,
    /// Its allowed outbound hosts.
    pub outbound: Arc<[Outbound]>,
    /// The component, linked and ready to instantiate.
    pub pre: ProxyPre<GuestState>,
    /// The Spin interfaces' grants, for a component of a Spin application.
    pub spin: Option<Arc<SpinContext>>,
    /// Instances alive now on the route.
    pub active: Arc<AtomicUsize>,
}

/// One of a route's `max_instances` slots, held until its guest finished.
pub struct Slot(Arc<Shared>);

impl Slot {
    /// A slot, if the route has one free.
    pub fn take(shared: &Arc<Shared>) -> Option<Slot> {
        let max = shared.config.max_instances;
        shared
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(shared.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why the guest did not answer.
enum Failure {
    /// The instance could not be made (pool full, a limit at start).
    Instantiate(wasmtime::Error),
    /// The guest trapped (or a host call failed fatally).
    Trap(wasmtime::Error),
    /// It returned without setting the response.
    NoResponse,
    /// It set an error code instead of a response.
    ErrorCode(ErrorCode),
}

/// A plain-text response.
fn text(status: u16, body: &'static str) -> Response {
    Response::ok(body)
        .status(status)
        .header("content-type", "text/plain")
}

/// The response a failure gets, and the line the log gets. Backtraces go
/// to the log only.
fn answer_for(route: &str, failure: &Failure) -> Response {
    let limit = |error: &wasmtime::Error| error.downcast_ref::<LimitExceeded>().copied();
    match failure {
        Failure::Instantiate(error) | Failure::Trap(error) if limit(error).is_some() => {
            log(route, &format!("guest stopped: {error:?}"));
            match limit(error) {
                Some(LimitExceeded::Cpu(_)) => text(503, "the WebAssembly guest ran out of time\n"),
                _ => text(503, "the WebAssembly guest ran out of memory\n"),
            }
        }
        Failure::Instantiate(error) => {
            log(route, &format!("cannot instantiate the guest: {error:?}"));
            text(503, "no WebAssembly instance is available\n")
        }
        Failure::Trap(error) => {
            log(route, &format!("guest trapped: {error:?}"));
            text(500, "the WebAssembly guest failed\n")
        }
        Failure::NoResponse => {
            log(route, "the guest returned without setting a response");
            text(500, "the WebAssembly guest gave no response\n")
        }
        Failure::ErrorCode(code) => {
            log(
                route,
                &format!("the guest answered with an error: {code:?}"),
            );
            text(500, "the WebAssembly guest failed\n")
        }
    }
}

/// The request as `wasi:http` sees it (the body is whole: the ABI hands
/// the library the whole request body), with `extra` headers (Spin's).
pub fn http_request(
    request: &flexilib_sdk::Request<'_>,
    extra: &[(&'static str, String)],
) -> Result<hyper::Request<Full<Bytes>>, hyper::http::Error> {
    let mut builder = hyper::Request::builder()
        .method(request.method_bytes())
        .uri(request.target_bytes());
    let mut has_host = false;
    for (name, value) in request.headers() {
        has_host |= name.eq_ignore_ascii_case("host");
        builder = builder.header(name, value);
    }
    if !has_host {
        builder = builder.header("host", "localhost");
    }
    for (name, value) in extra {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Full::new(Bytes::copy_from_slice(request.body())))
}

/// Runs one request on the route; answers through `responder`.
pub async fn run(slot: Slot, request: hyper::Request<Full<Bytes>>, responder: Responder) {
    let shared = slot.0.clone();
    let route = shared.config.route.as_str();
    let _running = shared.host.running();
    let (state, stderr) =
        match GuestState::new(&shared.config, &shared.outbound, shared.spin.clone()) {
            Ok(made) => made,
            Err(error) => {
                log(route, &error.to_string());
                drop(slot);
                responder.complete(text(500, "the WebAssembly guest could not be set up\n"));
                return;
            }
        };
    let mut store = Store::new(&shared.host.engine, state);
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut context| context.data_mut().on_epoch());
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let handles = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)
        .and_then(|incoming| {
            let out = store.data_mut().http().new_response_outparam(sender)?;
            Ok((incoming, out))
        });
    let (incoming, out) = match handles {
        Ok(handles) => handles,
        Err(error) => {
            log(
                route,
                &format!("cannot hand the request to the guest: {error:#}"),
            );
            responder.complete(text(400, "bad request\n"));
            return;
        }
    };
    let pre = shared.pre.clone();
    let guest = tokio::spawn(async move {
        let proxy = pre
            .instantiate_async(&mut store)
            .await
            .map_err(Failure::Instantiate)?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, out)
            .await
            .map_err(Failure::Trap)
    });
    match receiver.await {
        Ok(Ok(response)) => {
            let (parts, body) = response.into_parts();
            let mut head = Response::new().status(parts.status.as_u16());
            for (name, value) in &parts.headers {
                head = head.header(
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                );
            }
            let pumped = match responder.stream(head) {
                Some(writer) => pump(body, writer).await,
                None => Err(PumpError::Closed),
            };
            let failure = finished(guest.await);
            // The instance is gone: its slot is free before the client
            // sees the end of the body (and sends its next request).
            drop(slot);
            match pumped {
                Ok(writer) => writer.finish(),
                Err(why) => log(route, &format!("response body cut: {why}")),
            }
            if let Some(failure) = failure {
                // The head was sent: the failure goes to the log only.
                drop(answer_for(route, &failure));
            }
        }
        Ok(Err(code)) => {
            drop(guest.await);
            drop(slot);
            responder.complete(answer_for(route, &Failure::ErrorCode(code)));
        }
        Err(_) => {
            let failure = finished(guest.await).unwrap_or(Failure::NoResponse);
            drop(slot);
            responder.complete(answer_for(route, &failure));
        }
    }
    log_stderr(route, &stderr.contents());
}

/// The guest task's outcome as a failure, if it failed.
fn finished(joined: Result<Result<(), Failure>, tokio::task::JoinError>) -> Option<Failure> {
    match joined {
        Ok(Ok(())) => None,
        Ok(Err(failure)) => Some(failure),
        Err(error) => Some(Failure::Trap(wasmtime::Error::msg(format!(
            "the guest's task ended: {error}"
        )))),
    }
}

/// The guest's stderr, line by line, into the server's log.
fn log_stderr(route: &str, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    for line in String::from_utf8_lossy(bytes).lines() {
        log(route, &format!("guest: {line}"));
    }
}

/// Why a streamed body did not end whole.
#[derive(Debug, thiserror::Error)]
enum PumpError {
    #[error("the client went away")]
    Closed,
    #[error("the guest's body failed: {0:?}")]
    Body(wasmtime_wasi_http::Error),
}

/// Copies the guest's body to the client, returning the writer to finish
/// the body with; dropping it on an error aborts the body (the client sees
/// the connection cut, never a short body that looks whole).
async fn pump(mut body: HyperOutgoingBody, writer: BodyWriter) -> Result<BodyWriter, PumpError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(PumpError::Body)?;
        // Trailers have no place in the ABI's response; they are dropped.
        if let Ok(data) = frame.into_data() {
            write(&writer, &data).await?;
        }
    }
    Ok(writer)
}

/// Writes `data` without blocking a runtime thread: when the host's buffer
/// is full, waits for its writable callback.
async fn write(writer: &BodyWriter, data: &[u8]) -> Result<(), PumpError> {
    loop {
        match writer.try_write(data) {
            Ok(()) => return Ok(()),
            Err(WriteError::Closed) => return Err(PumpError::Closed),
            Err(WriteError::Full) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                writer.on_writable(move || {
                    let _ = tx.send(());
                });
                let _ = rx.await;
            }
        }
    }
}
