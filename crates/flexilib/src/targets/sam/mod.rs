//! SAM targets: an AWS SAM application behind a route prefix, answering as
//! API Gateway does. Each function of the template is a Lambda function
//! of its own ([`LambdaFunction`]: its pool, instances, Runtime API and
//! hot reload); this module adds what API Gateway adds in front of them.
//!
//! * [`router`] — route selection: most specific path, method or `ANY`,
//!   `$default`; 404 (HTTP API) or 403 (REST API) for no route.
//! * [`event_v1`] — payload format 1.0 (REST APIs): the event and the result.
//!
//! With `function=ID` the rule serves that function's Function URL
//! instead (the Lambda target's own `serve`). Payload 2.0 events are the
//! Lambda target's, with the route's `routeKey`,
//! `pathParameters` and stage. The template is watched: an edit that reads
//! well replaces the routes and functions (unchanged functions keep their
//! warm instances); one that does not is logged and the previous routes
//! keep serving.

pub mod event_v1;
pub mod router;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use parking_lot::Mutex;
use serde_json::json;

use crate::access_log::TargetNote;
use crate::config::sam::{template, Payload, SamSpec};
use crate::file_version::FileVersion;
use crate::http1::RequestBody;
use crate::respond::ReplyBody;
use crate::targets::lambda::{self, event, logs, LambdaFunction, Outcome, MAX_PAYLOAD};
use crate::targets::{whole_body, CallInfo, Served, TargetEnv};
use router::{Lookup, Router};

/// A live SAM application.
pub struct SamApplication {
    spec: SamSpec,
    loaded: ArcSwap<Loaded>,
    /// The template's version when it was last read.
    seen: Mutex<Option<FileVersion>>,
    /// Why the template could not be read when the target was made.
    first_error: Option<String>,
}

/// What one reading of the template serves.
#[derive(Default)]
struct Loaded {
    functions: Vec<Arc<LambdaFunction>>,
    router: Router,
    /// `function=`: the function whose Function URL the rule serves.
    url_function: Option<usize>,
}

impl std::fmt::Debug for SamApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamApplication")
            .field("template", &self.spec.template)
            .finish_non_exhaustive()
    }
}

impl SamApplication {
    /// Reads the template; its functions start no instance yet.
    pub fn new(spec: &SamSpec) -> Self {
        let seen = FileVersion::of(&spec.template).ok();
        let (loaded, first_error) = match template::load(spec) {
            Ok(app) => (build(&app, &[], spec.function.as_deref()), None),
            Err(error) => (Loaded::default(), Some(error.to_string())),
        };
        Self {
            spec: spec.clone(),
            loaded: ArcSwap::from_pointee(loaded),
            seen: Mutex::new(seen),
            first_error,
        }
    }

    /// The template's error, if it could not be read when the target was made.
    pub fn prepare(&self) -> Result<(), String> {
        self.first_error.clone().map_or(Ok(()), Err)
    }

    /// Its functions (for the Invoke API).
    pub fn functions(&self) -> Vec<Arc<LambdaFunction>> {
        self.loaded.load().functions.clone()
    }

    /// The template and every function's code.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.spec.template.clone()];
        for function in &self.loaded.load().functions {
            paths.extend(function.watched_path());
        }
        paths
    }

    /// `path` was written: the template is read again, a function's code
    /// starts a new generation of its instances.
    pub fn file_changed(&self, path: &Path) {
        if path == self.spec.template {
            self.recheck_template();
        }
        for function in &self.loaded.load().functions {
            function.file_changed(path);
        }
    }

    /// Compares the template and every function's executable with what serves.
    pub fn recheck(&self) {
        self.recheck_template();
        for function in &self.loaded.load().functions {
            function.recheck();
        }
    }

    fn recheck_template(&self) {
        let Ok(now) = FileVersion::of(&self.spec.template) else {
            return;
        };
        let mut seen = self.seen.lock();
        if *seen == Some(now) {
            return;
        }
        *seen = Some(now);
        match template::load(&self.spec) {
            Ok(app) => {
                for warning in &app.warnings {
                    tracing::warn!("{warning}");
                }
                let current = self.loaded.load();
                let loaded = build(&app, &current.functions, self.spec.function.as_deref());
                let functions = loaded.functions.len();
                self.loaded.store(Arc::new(loaded));
                tracing::info!(
                    template = %self.spec.template.display(),
                    functions,
                    "SAM template reloaded"
                );
            }
            Err(error) => {
                tracing::error!(%error, "SAM template rejected; the previous routes keep serving");
            }
        }
    }
}

/// Functions and routes for `app`, reusing the functions of `previous`
/// whose description did not change (their warm instances stay); `url`
/// names the function whose Function URL the rule serves, if any.
fn build(app: &template::SamApp, previous: &[Arc<LambdaFunction>], url: Option<&str>) -> Loaded {
    let reusable: HashMap<_, _> = previous
        .iter()
        .map(|function| (function.spec().clone(), Arc::clone(function)))
        .collect();
    let functions: Vec<Arc<LambdaFunction>> = app
        .functions
        .iter()
        .map(|function| {
            reusable
                .get(&function.spec)
                .cloned()
                .unwrap_or_else(|| Arc::new(LambdaFunction::new(&function.spec)))
        })
        .collect();
    let router = Router::new(
        app.functions
            .iter()
            .enumerate()
            .flat_map(|(index, function)| function.routes.iter().map(move |route| (index, route))),
    );
    let url_function = url.and_then(|id| app.functions.iter().position(|f| f.spec.name == id));
    Loaded {
        functions,
        router,
        url_function,
    }
}

/// Serves one request as API Gateway would.
pub async fn serve(
    env: &TargetEnv,
    app: &SamApplication,
    request: Request<RequestBody>,
    call: CallInfo<'_>,
) -> Served {
    let loaded = app.loaded.load_full();
    if let Some(function) = loaded.url_function.and_then(|i| loaded.functions.get(i)) {
        // A Function URL: every path and method, as a `lambda:` route.
        return lambda::serve(env, function, request, call).await;
    }
    let (parts, body) = request.into_parts();
    // The path within the API: what follows the rule's prefix.
    let rest = crate::request_path::strip_normalized_prefix(parts.uri.path(), call.route_prefix)
        .unwrap_or_default();
    let raw_path = if rest.starts_with('/') {
        rest.to_string()
    } else if rest.is_empty() || call.route_prefix.ends_with('/') {
        format!("/{rest}")
    } else {
        // `/app` also matches `/appx`, which is no path of the API.
        String::new()
    };
    let path = crate::request_path::normalize(&raw_path)
        .map(|path| path.into_owned())
        .unwrap_or_default();
    let matched = match loaded.router.lookup(parts.method.as_str(), &path) {
        _ if path.is_empty() => Lookup::NotFound,
        lookup => lookup,
    };
    let matched = match matched {
        Lookup::Found(matched) => matched,
        Lookup::NotFound => return Served::plain(message(StatusCode::NOT_FOUND, "Not Found")),
        Lookup::MissingAuthenticationToken => {
            return Served::plain(message(
                StatusCode::FORBIDDEN,
                "Missing Authentication Token",
            ))
        }
    };
    let route = matched.route;
    let Some(function) = loaded.functions.get(route.function) else {
        return Served::plain(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    let body = match whole_body::read_whole(body, env.max_body_bytes, env.body_timeout).await {
        Ok(body) => body,
        Err(reply) => return Served::plain(reply.into_response()),
    };
    let started = Instant::now();
    let now = SystemTime::now();
    let rest_api = matches!(route.api, crate::config::sam::ApiKind::Rest);
    let event = match route.payload() {
        Payload::V2 => event::routed_request_event(
            &parts,
            &body,
            call.peer_ip,
            now,
            &event::RouteContext {
                route_key: &route.route_key,
                raw_path: &raw_path,
                stage: &route.stage,
                path_parameters: &matched.params,
                secure: call.secure,
            },
        ),
        Payload::V1 => event_v1::request_event(
            &parts,
            &body,
            call.peer_ip,
            now,
            &event_v1::RouteContext {
                resource: &route.resource,
                path: &path,
                stage: &route.stage,
                path_parameters: &matched.params,
                http_api_route_key: (!rest_api).then_some(route.route_key.as_str()),
                secure: call.secure,
            },
        ),
    };
    if event.len() > MAX_PAYLOAD {
        return Served::plain(message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Entity Too Large",
        ));
    }
    let name = function.spec().name.clone();
    let outcome = function.invoke(Bytes::from(event)).await;
    let failure = || {
        if rest_api {
            message(StatusCode::BAD_GATEWAY, "Internal server error")
        } else {
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    let response = match outcome {
        Outcome::Response(result) => {
            let response = match route.payload() {
                Payload::V2 => event::result_response(&result),
                Payload::V1 => event_v1::result_response(&result),
            };
            response.unwrap_or_else(|error| {
                logs::line(
                    &name,
                    &format!("Invalid result for an HTTP response: {error}"),
                );
                failure()
            })
        }
        streaming @ Outcome::Streaming { .. } => lambda::http_response(&name, streaming),
        Outcome::Failed(_) => failure(),
        Outcome::Throttled => message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
    };
    Served {
        response,
        usage: crate::arena::ArenaUsage::default(),
        note: Some(TargetNote {
            kind: "lambda",
            who: name,
            time: started.elapsed(),
        }),
        fields: None,
    }
}

/// `{"message": …}` as API Gateway answers what it answers itself.
fn message(status: StatusCode, text: &str) -> Response<ReplyBody> {
    let body = json!({ "message": text }).to_string();
    let mut response = Response::new(ReplyBody::Full(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
