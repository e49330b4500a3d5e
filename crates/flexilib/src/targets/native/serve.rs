//! One request to a library target: read the body, wait for a handler slot,
//! call the library, turn its answer (or failure) into a reply.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::{LoadError, NativeLibrary, Reloaded};
use crate::handlers::Outcome;
use crate::respond::Reply;
use crate::targets::{body, Served, TargetEnv};

/// Serves `request` with `library`.
pub async fn serve(env: &TargetEnv, library: &NativeLibrary, request: Request<Incoming>) -> Served {
    let (head, body) = request.into_parts();
    let body = match body::read_whole(body, env.max_body_bytes, env.body_timeout).await {
        Ok(body) => body,
        Err(reply) => return Served::plain(reply.into_response()),
    };
    let (outcome, usage) = env.handlers.call(library, &head, body).await;
    let target = &head.uri;
    let reply = match outcome {
        Outcome::Response(response) => Reply::from_library(response).unwrap_or_else(|problem| {
            tracing::warn!(%target, %problem, "library returned an invalid response");
            Reply::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error: invalid response from handler\n",
            )
        }),
        Outcome::CallFailed(error) => {
            tracing::warn!(%target, %error, "library call failed");
            Reply::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error: handler failed\n",
            )
        }
        Outcome::LoadFailed(error) => {
            // A failure is logged once per version of the file.
            if matches!(error, LoadError::Unchanged { .. }) {
                tracing::debug!(%target, %error, "library load failed");
            } else {
                tracing::warn!(%target, %error, "library load failed");
            }
            Reply::text(
                StatusCode::BAD_GATEWAY,
                "502 Bad Gateway: handler library could not be loaded\n",
            )
        }
    };
    Served {
        response: reply.into_response(),
        usage,
        note: None,
    }
}

/// Loads the library file again if it is not the version serving.
pub fn reload(library: &NativeLibrary) {
    // A failure is logged by `reload`; the next event for the file retries.
    if let Reloaded::Loaded(generation) = library.reload() {
        tracing::debug!(library = %library.path().display(), generation, "requests switched");
    }
}
