//! HTTP-01 answers: while an order is being validated, the CA asks the
//! plain port for `/.well-known/acme-challenge/TOKEN` and must get the
//! key authorization of that token. The tokens live here, put in by the
//! order and taken out when it ends. A request for any other path under
//! the prefix goes to the routes as usual: without `ACME_DOMAINS`, or
//! between orders, a site may serve its own challenge files (certbot's
//! webroot, say).

use std::collections::HashMap;

use bytes::Bytes;
use hyper::{Request, StatusCode};
use parking_lot::RwLock;

use crate::http1::RequestBody;
use crate::respond::Reply;

/// Where the CA looks (RFC 8555, section 8.3).
const PREFIX: &str = "/.well-known/acme-challenge/";

/// Token → key authorization, for the orders under way.
static TOKENS: RwLock<Option<HashMap<String, String>>> = RwLock::new(None);

/// The answer to `request` if it asks for a token of an order under way;
/// None for every other request, which is served as usual.
pub fn answer(request: &Request<RequestBody>) -> Option<Reply> {
    let token = request.uri().path().strip_prefix(PREFIX)?;
    let tokens = TOKENS.read();
    let authorization = tokens.as_ref()?.get(token)?;
    Some(Reply::text_owned(
        StatusCode::OK,
        Bytes::from(authorization.clone()),
    ))
}

/// A token answered while this value lives.
#[derive(Debug)]
pub struct Published {
    token: String,
}

/// Answers `token` with `authorization` until the returned value is dropped.
pub fn publish(token: String, authorization: String) -> Published {
    TOKENS
        .write()
        .get_or_insert_with(HashMap::new)
        .insert(token.clone(), authorization);
    Published { token }
}

impl Drop for Published {
    fn drop(&mut self) {
        if let Some(tokens) = TOKENS.write().as_mut() {
            tokens.remove(&self.token);
        }
    }
}
