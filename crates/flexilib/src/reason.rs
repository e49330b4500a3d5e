//! The reason phrase of a status code that has no registered one.
//!
//! hyper writes `<none>` after a status it has no name for (`HTTP/1.1 999
//! <none>`), which reads like a reason a handler chose. nginx writes an
//! empty reason (`HTTP/1.1 999 `), which RFC 9112 §4 allows
//! (`status-line = HTTP-version SP status-code SP [ reason-phrase ]`) and
//! clients ignore anyway; FlexiLib does the same.

use hyper::ext::ReasonPhrase;
use hyper::StatusCode;

/// The reason to send with `status` when the handler gave none: `None`
/// (hyper's canonical reason) for a registered status, empty otherwise.
pub fn fallback(status: StatusCode) -> Option<ReasonPhrase> {
    status
        .canonical_reason()
        .is_none()
        .then(|| ReasonPhrase::from_static(b""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unregistered_statuses_get_an_empty_reason() {
        for code in [200, 404, 418, 503] {
            let status = StatusCode::from_u16(code).expect("status");
            assert!(fallback(status).is_none(), "{code}");
        }
        for code in [299, 599, 999] {
            let status = StatusCode::from_u16(code).expect("status");
            assert_eq!(
                fallback(status).map(|r| r.as_bytes().to_vec()),
                Some(Vec::new()),
                "{code}"
            );
        }
    }
}
