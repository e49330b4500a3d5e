//! The native functions the prelude builds the Web APIs on: text and
//! bytes, URLs, crypto, timers, answering (whole or streamed), outbound
//! `fetch`, KV, D1, R2, and `waitUntil` bookkeeping.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::rc::Rc;
use std::time::{Duration, Instant};

use flexilib_sdk::{Response, WriteError};
use rquickjs::{Array, Ctx, Exception, Function, Object, TypedArray, Value};

use crate::fetch::Redirect;
use crate::report::{internal_error, log, resource_limits};
use crate::shared::{Msg, OpResult, Payload, ServiceAnswer};
use crate::state::{answer_failed, Answer, Call, State};
use crate::web;

/// workerd's error for timers started outside a request.
const GLOBAL_SCOPE: &str = "Disallowed operation called within global scope. Asynchronous I/O (ex: fetch() or connect()), setting a timeout, and generating random values are not allowed within global scope. To fix this error, perform this operation within a handler. https://developers.cloudflare.com/workers/runtime-apis/handlers/";

/// A copy of a `Uint8Array`'s bytes.
pub(crate) fn bytes_of(array: &TypedArray<'_, u8>) -> Vec<u8> {
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

pub(crate) fn opt<'js, T: rquickjs::IntoJs<'js>>(
    ctx: &Ctx<'js>,
    value: Option<T>,
) -> rquickjs::Result<Value<'js>> {
    match value {
        Some(value) => value.into_js(ctx),
        None => Ok(Value::new_null(ctx.clone())),
    }
}

/// The largest streamed body a worker answers a service binding's call
/// with (it is gathered whole): 32 MiB.
const MAX_SERVICE_BODY: usize = 32 << 20;

pub(crate) fn id(number: f64) -> u64 {
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

pub(crate) fn type_error(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    Exception::throw_type(ctx, message)
}

/// The largest number JavaScript holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A value bound to a D1 statement (the prelude has already made booleans
/// 1/0 and byte arrays `Uint8Array`s): a whole number binds as INTEGER,
/// other numbers as REAL, as D1 binds them.
pub(crate) fn sql_value(
    ctx: &Ctx<'_>,
    value: &Value<'_>,
) -> rquickjs::Result<rusqlite::types::Value> {
    use rusqlite::types::Value as Sql;
    if value.is_null() || value.is_undefined() {
        return Ok(Sql::Null);
    }
    if let Some(text) = value.as_string() {
        return Ok(Sql::Text(text.to_string()?));
    }
    if let Some(n) = value.as_int() {
        return Ok(Sql::Integer(i64::from(n)));
    }
    if let Some(x) = value.as_float() {
        return Ok(if x.fract() == 0.0 && x.abs() <= MAX_SAFE_INTEGER {
            Sql::Integer(x as i64)
        } else {
            Sql::Real(x)
        });
    }
    if let Some(b) = value.as_bool() {
        return Ok(Sql::Integer(i64::from(b)));
    }
    match TypedArray::<u8>::from_value(value.clone()) {
        Ok(bytes) => Ok(Sql::Blob(bytes_of(&bytes))),
        Err(_) => Err(type_error(ctx, "D1_TYPE_ERROR: unsupported value")),
    }
}

/// JSON from the prelude (`null` for none) made a Rust value.
fn from_json<T: serde::de::DeserializeOwned>(
    ctx: &Ctx<'_>,
    text: Option<String>,
) -> rquickjs::Result<Option<T>> {
    match text {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| type_error(ctx, &format!("invalid options: {e}"))),
    }
}

/// The native functions the prelude builds the Web APIs on.
pub(crate) fn natives<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<State>>,
) -> rquickjs::Result<Object<'js>> {
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
    // objectsLive(n): the Durable Objects this thread holds now, for the
    // admin listener's `/metrics`.
    let s = state.clone();
    native!("objectsLive", move |live: f64| {
        let mut state = s.borrow_mut();
        state.reports_objects = true;
        state
            .shared
            .counts
            .objects
            .store(id(live) as usize, std::sync::atomic::Ordering::Relaxed);
    });
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
    native!("encodingName", |ctx: Ctx<'js>, label: String| opt(
        &ctx,
        web::encoding_name(&label)
    ));
    native!(
        "legacyDecode",
        |ctx: Ctx<'js>,
         name: String,
         bytes: TypedArray<'js, u8>,
         fatal: bool,
         stream: bool,
         strip_bom: bool| {
            let decoded = web::decode_legacy(&name, &bytes_of(&bytes), fatal, stream, strip_bom);
            match decoded {
                Some((text, used)) => {
                    let pair = rquickjs::Array::new(ctx.clone())?;
                    pair.set(0, text)?;
                    pair.set(1, used)?;
                    rquickjs::Result::Ok(pair.into_value())
                }
                None => rquickjs::Result::Ok(Value::new_null(ctx)),
            }
        }
    );
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
    let s = state.clone();
    // The request whose JavaScript runs now (0: none), for AsyncLocalStorage.
    native!("currentCall", move || s.borrow().current as f64);
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
    native!("timerStart", move |ctx: Ctx<'js>, timer: f64, ms: f64| {
        let mut state = s.borrow_mut();
        if state.current == 0 {
            return Err(Exception::throw_message(&ctx, GLOBAL_SCOPE));
        }
        // A timer set by an ended request (its leftover microtasks) never fires.
        if state.may_start() {
            let delay = Duration::from_secs_f64((ms.max(0.0) / 1000.0).min(1e9));
            let at = Instant::now() + delay;
            let owner = state.current;
            state.timers.push(Reverse((at, id(timer))));
            state.timer_owner.insert(id(timer), owner);
        }
        Ok(())
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
        let call = id(call);
        let taken = s.borrow_mut().take_answer(call);
        let result = match taken {
            Some(Answer::Pending(responder)) => body_bytes(&body).map(|body| {
                responder.complete(sdk_response(status, &status_text, &flat, body));
            }),
            Some(Answer::Service(reply)) => body_bytes(&body).map(|body| {
                let _ = reply.send(ServiceAnswer {
                    status,
                    status_text: status_text.clone(),
                    headers: flat.clone(),
                    body,
                });
            }),
            // A cron's scheduled event: nobody to answer; a failure is
            // logged (its exception was, as it was thrown).
            Some(Answer::Cron(cron)) => {
                if status != 200 {
                    let route = s.borrow().shared.config.route.clone();
                    log(&route, &format!("cron `{cron}`: scheduled() failed"));
                }
                Ok(())
            }
            _ => Ok(()),
        };
        s.borrow_mut().finish_if_done(call);
        result
    });
    let s = state.clone();
    native!(
        "respondStream",
        move |call: f64, status: u16, status_text: String, flat: Vec<String>| {
            let call = id(call);
            let taken = s.borrow_mut().take_answer(call);
            let streaming = match taken {
                Some(Answer::Pending(responder)) => {
                    let head = sdk_response(status, &status_text, &flat, Vec::new());
                    responder.stream(head).map(Answer::Streaming)
                }
                // A service's caller gets the body gathered, at its end.
                Some(Answer::Service(reply)) => Some(Answer::ServiceStream(
                    ServiceAnswer {
                        status,
                        status_text,
                        headers: flat,
                        body: Vec::new(),
                    },
                    reply,
                )),
                _ => None,
            };
            if let Some(streaming) = streaming {
                if let Some(live) = s.borrow_mut().calls.get_mut(&call) {
                    live.answer = Some(streaming);
                    live.answered_at = None;
                }
            }
            s.borrow_mut().finish_if_done(call);
        }
    );
    let s = state.clone();
    native!("write", move |call: f64, chunk: TypedArray<'js, u8>| {
        let mut state = s.borrow_mut();
        if let Some(Call {
            answer: Some(Answer::ServiceStream(answer, _)),
            ..
        }) = state.calls.get_mut(&id(call))
        {
            if answer.body.len() + chunk.len() > MAX_SERVICE_BODY {
                return 2;
            }
            answer.body.extend_from_slice(&bytes_of(&chunk));
            return 0;
        }
        let Some(Call {
            answer: Some(Answer::Streaming(writer)),
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
        if !state.may_start() {
            return;
        }
        let current = state.current;
        state.ops.insert(op, current);
        let tx = state.tx.clone();
        let generation = state.generation;
        let notify = move || {
            let _ = tx.send(Msg::Done(generation, op, OpResult::Ok(Payload::Undefined)));
        };
        match state.calls.get(&id(call)) {
            Some(Call {
                answer: Some(Answer::Streaming(writer)),
                ..
            }) => writer.on_writable(notify),
            _ => notify(),
        }
    });
    let s = state.clone();
    native!("end", move |call: f64, ok: bool| {
        let call = id(call);
        let taken = s.borrow_mut().take_answer(call);
        match taken {
            Some(Answer::Streaming(writer)) if ok => writer.finish(),
            Some(Answer::ServiceStream(answer, reply)) if ok => {
                let _ = reply.send(answer);
            }
            _ => {}
        }
        s.borrow_mut().finish_if_done(call);
    });
    let s = state.clone();
    native!("waitUntil", move |call: f64, delta: i32| {
        let call = id(call);
        let mut state = s.borrow_mut();
        if let Some(live) = state.calls.get_mut(&call) {
            live.waits = if delta > 0 {
                live.waits.saturating_add(1)
            } else {
                live.waits.saturating_sub(1)
            };
            state.finish_if_done(call);
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
            answer_failed(&s, id(call), resource_limits());
        } else {
            log(&route, &format!("Uncaught {text}"));
            answer_failed(&s, id(call), internal_error());
        }
        ctx.run_gc();
    });

    // Service bindings: another worker of this server, in process.
    let s = state.clone();
    native!(
        "serviceFetch",
        // `service`: [worker name, entrypoint or '', RPC method or ''].
        move |op: f64,
              service: Vec<String>,
              method: String,
              url: String,
              flat: Vec<String>,
              body: Option<TypedArray<'js, u8>>| {
            let body = body.map(|b| bytes_of(&b)).unwrap_or_default();
            let mut service = service.into_iter();
            let name = service.next().unwrap_or_default();
            let entry = crate::shared::Entry {
                entrypoint: service.next().unwrap_or_default(),
                method: service.next().unwrap_or_default(),
            };
            let entry = (!entry.entrypoint.is_empty() || !entry.method.is_empty()).then_some(entry);
            let mut state = s.borrow_mut();
            state.spawn(id(op), async move {
                let head_request = method == "HEAD";
                let result =
                    crate::services::call(&name, entry, method, url.clone(), flat, body).await;
                answer_head(result, url, head_request)
            });
        }
    );

    // Durable Objects: calls go to the object's home JS thread; storage
    // runs off the JS thread.
    let s = state.clone();
    native!(
        "objectCall",
        // `which`: [binding index, object id, RPC method or ''].
        move |ctx: Ctx<'js>,
              op: f64,
              which: Vec<String>,
              method: String,
              url: String,
              flat: Vec<String>,
              body: Option<TypedArray<'js, u8>>| {
            let body = body.map(|b| bytes_of(&b)).unwrap_or_default();
            let mut state = s.borrow_mut();
            let Some(home) = state.shared.objects_home.get().cloned() else {
                return Err(type_error(&ctx, "Durable Objects are not running"));
            };
            let (Some(binding), Some(object)) = (
                which.first().and_then(|b| b.parse::<usize>().ok()),
                which.get(1).cloned(),
            ) else {
                return Err(type_error(&ctx, "not a Durable Object"));
            };
            let shared = state.shared.clone();
            let target = crate::shared::ObjectTarget {
                binding,
                id: object,
                rpc: which.get(2).filter(|m| !m.is_empty()).cloned(),
            };
            state.spawn(id(op), async move {
                let result = crate::services::call_object_in_turn(
                    &shared,
                    home,
                    target,
                    method,
                    url.clone(),
                    flat,
                    body,
                )
                .await;
                answer_head(result, url, false)
            });
            Ok(())
        }
    );
    let s = state.clone();
    native!("doIdFromName", move |binding: usize, name: String| {
        let state = s.borrow();
        let class = state
            .shared
            .config
            .objects
            .get(binding)
            .map(|o| o.class_name.clone())
            .unwrap_or_default();
        crate::objects::id_from_name(&class, &name)
    });
    native!("doNewUniqueId", crate::objects::new_unique_id);
    native!("doIsId", |id: String| crate::objects::is_id(&id));
    let s = state.clone();
    native!(
        "doStorage",
        move |ctx: Ctx<'js>,
              op: f64,
              binding: usize,
              object: String,
              what: String,
              args: Vec<String>| {
            let mut state = s.borrow_mut();
            let Some(store) = state.shared.objects.get(binding).cloned() else {
                return Err(type_error(&ctx, "no such Durable Object namespace"));
            };
            state.spawn_blocking(id(op), move || {
                storage_op(&store, &object, &what, args).map_or_else(
                    |e| OpResult::Err("Error", e.to_string()),
                    |text| OpResult::Ok(Payload::Text(text)),
                )
            });
            Ok(())
        }
    );

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
        let route = state.shared.config.route.clone();
        state.spawn(id(op), async move {
            let shown = url.to_string();
            match crate::fetch::fetch(client, method, url, flat, body, redirect).await {
                Ok(head) => OpResult::Ok(Payload::Head(head)),
                Err(error) => {
                    if let crate::fetch::FetchError::Network(chain) = &error {
                        // workerd's message says little; the log says why.
                        log(&route, &format!("fetch {shown} failed: {chain}"));
                    }
                    let (class, message) = error.workerd_error();
                    OpResult::Err(class, message)
                }
            }
        });
        Ok::<_, rquickjs::Error>(())
    });
    let s = state.clone();
    native!("bodyRead", move |op: f64, body: f64| {
        let (op, body) = (id(op), id(body));
        let mut state = s.borrow_mut();
        match state.bodies.remove(&body).map(|(_, rx)| rx) {
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

    // D1.
    let d1_database = |ctx: &Ctx<'js>, state: &Rc<RefCell<State>>, db: usize| {
        state
            .borrow()
            .shared
            .d1
            .get(db)
            .cloned()
            .ok_or_else(|| type_error(ctx, "unknown D1 database"))
    };
    let s = state.clone();
    native!("d1Query", move |ctx: Ctx<'js>,
                             op: f64,
                             db: usize,
                             sqls: Vec<String>,
                             params: Array<'js>| {
        let database = d1_database(&ctx, &s, db)?;
        let mut queries = Vec::with_capacity(sqls.len());
        for (index, sql) in sqls.into_iter().enumerate() {
            let values: Array<'js> = params.get(index)?;
            let mut bound = Vec::with_capacity(values.len());
            for value in values.iter::<Value<'js>>() {
                bound.push(sql_value(&ctx, &value?)?);
            }
            queries.push(crate::d1::Query { sql, params: bound });
        }
        s.borrow_mut()
            .spawn_blocking(id(op), move || match database.query(&queries) {
                Ok(json) => OpResult::Ok(Payload::Text(json)),
                Err(e) => OpResult::Err("Error", e.to_string()),
            });
        Ok::<_, rquickjs::Error>(())
    });
    let s = state.clone();
    native!("d1Exec", move |ctx: Ctx<'js>,
                            op: f64,
                            db: usize,
                            lines: Vec<String>| {
        let database = d1_database(&ctx, &s, db)?;
        s.borrow_mut()
            .spawn_blocking(id(op), move || match database.exec(&lines) {
                Ok(json) => OpResult::Ok(Payload::Text(json)),
                Err(e) => OpResult::Err("Error", e.to_string()),
            });
        Ok::<_, rquickjs::Error>(())
    });

    // R2.
    let r2_bucket = |ctx: &Ctx<'js>, state: &Rc<RefCell<State>>, bucket: usize| {
        state
            .borrow()
            .shared
            .r2
            .get(bucket)
            .cloned()
            .ok_or_else(|| type_error(ctx, "unknown R2 bucket"))
    };
    let s = state.clone();
    native!("r2Put", move |ctx: Ctx<'js>,
                           op: f64,
                           bucket: usize,
                           key: String,
                           value: TypedArray<'js, u8>,
                           options: String| {
        let store = r2_bucket(&ctx, &s, bucket)?;
        let options: crate::r2::PutOptions = from_json(&ctx, Some(options))?.unwrap_or_default();
        let value = bytes_of(&value);
        s.borrow_mut()
            .spawn_blocking(id(op), move || match store.put(&key, &value, &options) {
                Ok(Some(json)) => OpResult::Ok(Payload::Text(json)),
                Ok(None) => OpResult::Ok(Payload::Null),
                Err(e) => OpResult::Err("Error", format!("put: {e}")),
            });
        Ok::<_, rquickjs::Error>(())
    });
    let s = state.clone();
    native!("r2Get", move |ctx: Ctx<'js>,
                           op: f64,
                           bucket: usize,
                           key: String,
                           range: Option<String>,
                           only_if: Option<String>,
                           body: bool| {
        let store = r2_bucket(&ctx, &s, bucket)?;
        let range: Option<crate::r2::RangeSpec> = from_json(&ctx, range)?;
        let only_if: Option<crate::r2::Conditions> = from_json(&ctx, only_if)?;
        let action = if body { "get" } else { "head" };
        s.borrow_mut().spawn_blocking(id(op), move || {
            match store.get(&key, range.as_ref(), only_if.as_ref(), body) {
                Ok(Some(found)) => OpResult::Ok(match found.body {
                    Some(bytes) => Payload::Entry(bytes, Some(found.meta)),
                    None => Payload::Text(found.meta),
                }),
                Ok(None) => OpResult::Ok(Payload::Null),
                Err(e) => OpResult::Err("Error", format!("{action}: {e}")),
            }
        });
        Ok::<_, rquickjs::Error>(())
    });
    let s = state.clone();
    native!(
        "r2Delete",
        move |ctx: Ctx<'js>, op: f64, bucket: usize, keys: Vec<String>| {
            let store = r2_bucket(&ctx, &s, bucket)?;
            s.borrow_mut()
                .spawn_blocking(id(op), move || match store.delete(&keys) {
                    Ok(()) => OpResult::Ok(Payload::Undefined),
                    Err(e) => OpResult::Err("Error", format!("delete: {e}")),
                });
            Ok::<_, rquickjs::Error>(())
        }
    );
    let s = state.clone();
    native!("r2List", move |ctx: Ctx<'js>,
                            op: f64,
                            bucket: usize,
                            options: String| {
        let store = r2_bucket(&ctx, &s, bucket)?;
        let options: crate::r2::ListOptions = from_json(&ctx, Some(options))?.unwrap_or_default();
        s.borrow_mut()
            .spawn_blocking(id(op), move || match store.list(&options) {
                Ok(json) => OpResult::Ok(Payload::Text(json)),
                Err(e) => OpResult::Err("Error", format!("list: {e}")),
            });
        Ok::<_, rquickjs::Error>(())
    });
    crate::websocket::natives(ctx, state, &n)?;
    crate::storage_natives::register(ctx, state, &n)?;
    Ok(n)
}

/// A service's or Durable Object's answer as the head `fetch` resolves
/// with (its body, already whole, as one chunk).
fn answer_head(
    result: Result<ServiceAnswer, crate::services::ServiceError>,
    url: String,
    head_request: bool,
) -> OpResult {
    match result {
        Ok(answer) => {
            let no_body = head_request || matches!(answer.status, 101 | 204 | 205 | 304);
            let body = (!no_body).then(|| {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                let _ = tx.try_send(Ok(bytes::Bytes::from(answer.body)));
                rx
            });
            OpResult::Ok(Payload::Head(crate::fetch::FetchHead {
                status: answer.status,
                status_text: answer.status_text,
                headers: answer.headers,
                body,
                url,
                redirected: false,
            }))
        }
        Err(error) => OpResult::Err("Error", error.to_string()),
    }
}

/// One `ctx.storage` operation of Durable Object `object` (see the prelude):
/// its answer as JSON text. `args`: `get` and `delete` keys; `put` keys and
/// JSON values, alternating; `list` prefix, start, end, limit, reverse
/// (empty strings for none).
fn storage_op(
    store: &crate::objects::ObjectStore,
    object: &str,
    what: &str,
    args: Vec<String>,
) -> Result<String, crate::objects::ObjectError> {
    match what {
        "get" => {
            let values = store.get(object, &args)?;
            let items: Vec<String> = values
                .into_iter()
                .map(|value| value.map_or_else(|| "null".to_string(), |v| format!("{{\"v\":{v}}}")))
                .collect();
            Ok(format!("[{}]", items.join(",")))
        }
        "put" => {
            // Cloudflare's limits: keys up to 2 KiB, values up to 128 KiB.
            for pair in args.chunks_exact(2) {
                if pair[0].len() > 2048 {
                    return Err(crate::objects::ObjectError::TooLarge(
                        "Keys cannot be larger than 2048 bytes.",
                    ));
                }
                if pair[1].len() > 131_072 {
                    return Err(crate::objects::ObjectError::TooLarge(
                        "Values cannot be larger than 131072 bytes.",
                    ));
                }
            }
            let entries: Vec<(String, String)> = args
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            store.put(object, &entries)?;
            Ok("null".into())
        }
        "delete" => Ok(store.delete(object, &args)?.to_string()),
        "deleteAll" => {
            store.delete_all(object)?;
            Ok("null".into())
        }
        _ => {
            let arg = |i: usize| args.get(i).filter(|a| !a.is_empty()).cloned();
            let options = crate::objects::ListOptions {
                prefix: arg(0).unwrap_or_default(),
                start: arg(1),
                end: arg(2),
                limit: arg(3).and_then(|l| l.parse().ok()).unwrap_or(0),
                reverse: arg(4).is_some_and(|r| r == "1"),
            };
            let entries = store.list(object, &options)?;
            let items: Vec<String> = entries
                .into_iter()
                .map(|(key, value)| format!("[{},{value}]", serde_json::Value::String(key)))
                .collect();
            Ok(format!("[{}]", items.join(",")))
        }
    }
}
