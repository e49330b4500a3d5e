//! One request to a library route: read the body, wait for a handler slot,
//! call the library on that I/O thread, then — for an ABI-2 library that
//! answered "pending" — wait for its completion without holding the slot,
//! and turn the answer (or failure) into a reply, whose body may stream.

use std::time::Duration;

use crate::http1::RequestBody;
use hyper::http::request::Parts;
use hyper::{Request, StatusCode, Uri};

use super::calls::{self, Registered};
use super::ffi::{CallContext, CallError, Called, LibraryResponse};
use super::route::{LibraryRoute, RouteError};
use super::upgrade::{self, Inbound};
use super::LoadError;
use crate::body_channel::BodyReceiver;
use crate::handlers::SlotArena;
use crate::http1::OnUpgrade;
use crate::respond::Reply;
use crate::targets::{whole_body, Served, TargetEnv};

/// What the call in the handler slot came to.
enum Outcome {
    /// The library answered (a streamed body, if any, comes through the
    /// registered call).
    Answered(Result<LibraryResponse, CallError>, Option<Registered>),
    /// The library completes the call later.
    Pending(Registered),
    /// The library or its instance is not available.
    Unavailable(RouteError),
}

/// Serves `request` on `route`.
pub async fn serve(
    env: &TargetEnv,
    route: &LibraryRoute,
    mut request: Request<RequestBody>,
) -> Served {
    // Taken by an ABI-3 library's `101`; a request that asks for no upgrade
    // has none.
    let on_upgrade = request.extensions_mut().remove::<OnUpgrade>();
    let (head, body) = request.into_parts();
    let body = match whole_body::read_whole(body, env.max_body_bytes, env.body_timeout).await {
        Ok(body) => body,
        Err(reply) => return Served::plain(reply.into_response()),
    };
    let (outcome, usage) = env
        .handlers
        .run(|arena| call(route, arena, &head, &body))
        .await;
    if route.take_new_files() {
        env.watch_new_files();
    }
    let target = &head.uri;
    let reply = match outcome {
        Outcome::Answered(answer, stream) => answered(answer, stream, on_upgrade, route, target),
        Outcome::Pending(registered) => {
            wait(
                registered,
                env.completion_timeout,
                on_upgrade,
                route,
                target,
            )
            .await
        }
        Outcome::Unavailable(error) => unavailable(&error, route, target),
    };
    let (response, fields) = reply.into_parts();
    Served {
        response,
        usage,
        note: None,
        fields,
    }
}

/// The blocking part, in a handler slot.
fn call(route: &LibraryRoute, arena: &mut SlotArena<'_>, head: &Parts, body: &[u8]) -> Outcome {
    let resolved = match route.resolve() {
        Ok(resolved) => resolved,
        Err(error) => return Outcome::Unavailable(error),
    };
    let library = &resolved.generation.library;
    if library.abi_version() < 2 && resolved.instance.is_none() {
        return match library.call(arena.get(), head, body, None) {
            Ok(Called::Response(response)) => Outcome::Answered(Ok(response), None),
            Ok(Called::Pending) => Outcome::Answered(Err(CallError::NullResponse), None),
            Err(error) => Outcome::Answered(Err(error), None),
        };
    }
    let instance = resolved
        .instance
        .as_ref()
        .map_or(std::ptr::null_mut(), |instance| instance.pointer());
    let registered = calls::register(Box::new((
        std::sync::Arc::clone(&resolved.generation),
        resolved.instance.clone(),
    )));
    let context = CallContext {
        instance,
        call: registered.id,
        host: &calls::HOST,
    };
    match library.call(arena.get(), head, body, Some(context)) {
        Ok(Called::Pending) => {
            let taken = arena.take_for_pending();
            if let Some(back) = calls::pending(registered.id, taken) {
                arena.restore(back);
            }
            Outcome::Pending(registered)
        }
        Ok(Called::Response(response)) => {
            calls::returned(registered.id, response.streamed());
            let stream = response.streamed().then_some(registered);
            Outcome::Answered(Ok(response), stream)
        }
        Err(error) => {
            calls::returned(registered.id, false);
            Outcome::Answered(Err(error), None)
        }
    }
}

/// Waits for a pending call's completion, holding no handler slot.
async fn wait(
    mut registered: Registered,
    timeout: Duration,
    on_upgrade: Option<OnUpgrade>,
    route: &LibraryRoute,
    target: &Uri,
) -> Reply {
    match tokio::time::timeout(timeout, &mut registered.completion).await {
        Ok(Ok(answer)) => {
            let stream = answer
                .as_ref()
                .is_ok_and(LibraryResponse::streamed)
                .then_some(registered);
            answered(answer, stream, on_upgrade, route, target)
        }
        Ok(Err(_)) => reply(Err(CallError::NullResponse), None, route, target),
        Err(_) => {
            tracing::warn!(%target, route = %route.spec.route, timeout_s = timeout.as_secs_f64(), "library did not complete the request in time");
            Reply::text(
                StatusCode::GATEWAY_TIMEOUT,
                "504 Gateway Timeout: the handler did not answer in time\n",
            )
        }
    }
}

/// The reply for a library's answer, a `101` included: then the
/// connection is handed to the library (see [`upgrade`]).
fn answered(
    answer: Result<LibraryResponse, CallError>,
    stream: Option<Registered>,
    on_upgrade: Option<OnUpgrade>,
    route: &LibraryRoute,
    target: &Uri,
) -> Reply {
    let Some(registered) = stream else {
        return reply(answer, None, route, target);
    };
    let switching = answer.as_ref().is_ok_and(|response| response.status == 101);
    match (answer, on_upgrade) {
        (Ok(response), Some(on_upgrade)) if switching => {
            upgraded(response, registered, on_upgrade, route, target)
        }
        (Ok(_), None) if switching => {
            invalid("101 to a request that asked for no upgrade", route, target)
        }
        (answer, _) => reply(answer, Some(registered.body), route, target),
    }
}

/// A library's `101`: the reply goes out, then the connection carries its
/// stream one way and the client's bytes the other.
fn upgraded(
    response: LibraryResponse,
    registered: Registered,
    on_upgrade: OnUpgrade,
    route: &LibraryRoute,
    target: &Uri,
) -> Reply {
    match super::reply::upgrade_from_library(response) {
        Ok(reply) => {
            let Registered {
                id, body, closer, ..
            } = registered;
            // The call may have ended already (a library that ended its
            // stream at once): then nothing comes in.
            let inbound = calls::inbound(id).unwrap_or_else(|| {
                let ended = std::sync::Arc::new(Inbound::default());
                ended.close();
                ended
            });
            tokio::spawn(async move {
                let _closer = closer;
                upgrade::serve(on_upgrade, body, inbound).await;
            });
            reply
        }
        Err(problem) => invalid(&problem.to_string(), route, target),
    }
}

/// 500 for a response the library should not have given (logged,
/// rate-limited per library and problem).
fn invalid(problem: &str, route: &LibraryRoute, target: &Uri) -> Reply {
    let library = route.spec.path.display();
    if let Some(held_back) = route.library.may_warn(problem) {
        tracing::warn!(%target, %library, %problem, held_back, "library returned an invalid response");
    }
    Reply::text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 Internal Server Error: invalid response from handler\n",
    )
}

/// The reply for a library's answer. Warnings about a failing library are
/// rate-limited per library and kind of failure.
fn reply(
    answer: Result<LibraryResponse, CallError>,
    stream: Option<BodyReceiver>,
    route: &LibraryRoute,
    target: &Uri,
) -> Reply {
    let library = route.spec.path.display();
    match answer {
        Ok(response) => super::reply::from_library(response, stream)
            .unwrap_or_else(|problem| invalid(&problem.to_string(), route, target)),
        Err(error) => {
            if let Some(held_back) = route.library.may_warn(&error.to_string()) {
                tracing::warn!(%target, %library, %error, held_back, "library call failed");
            }
            Reply::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error: handler failed\n",
            )
        }
    }
}

/// 502 for a library that cannot be loaded or an instance that cannot be built.
fn unavailable(error: &RouteError, route: &LibraryRoute, target: &Uri) -> Reply {
    match error {
        // A failure is logged once per version of the file.
        RouteError::Load(LoadError::Unchanged { .. }) => {
            tracing::debug!(%target, %error, "library load failed");
        }
        RouteError::Load(_) => tracing::warn!(%target, %error, "library load failed"),
        // Logged when the build failed.
        RouteError::Instance(_) => {
            tracing::debug!(%target, route = %route.spec.route, %error, "library instance unavailable");
        }
    }
    let text = match (error, route.spec.runtime) {
        (RouteError::Load(_), _) => "502 Bad Gateway: handler library could not be loaded\n",
        (RouteError::Instance(_), Some("worker")) => {
            "502 Bad Gateway: the worker for this route did not start (its script failed to load); the server log says why\n"
        }
        (RouteError::Instance(_), _) => {
            "502 Bad Gateway: the handler library's instance for this route could not be built; the server log says why\n"
        }
    };
    Reply::text(StatusCode::BAD_GATEWAY, text)
}
