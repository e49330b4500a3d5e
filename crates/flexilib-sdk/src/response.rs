//! The response a handler builds, owned by Rust until the SDK copies it into
//! the host's arena.

use core::fmt;
use std::borrow::Cow;
use std::io;

/// An HTTP response under construction.
///
/// Build it by value ([`status`](Self::status), [`header`](Self::header),
/// [`body`](Self::body), …) or in place ([`set_status`](Self::set_status),
/// [`add_header`](Self::add_header), [`push_str`](Self::push_str), `write!`
/// through [`fmt::Write`] or [`io::Write`]).
///
/// The status is passed to the host unchecked (`0` means 200). Header names
/// and values are passed as given; the host decides what to do with invalid
/// ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    reason: Option<String>,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    body: Vec<u8>,
    as_given: bool,
}

impl Default for Response {
    fn default() -> Self {
        Self::new()
    }
}

impl Response {
    /// An empty `200` response with no headers.
    pub fn new() -> Self {
        Response {
            status: 200,
            reason: None,
            headers: Vec::new(),
            body: Vec::new(),
            as_given: false,
        }
    }

    /// Asks the host to send the headers exactly as given: no default
    /// `content-type` is added (ABI 2; see [`crate::export_instance!`]).
    #[must_use]
    pub fn as_given(mut self) -> Self {
        self.as_given = true;
        self
    }

    /// True if the headers go out exactly as given.
    pub fn is_as_given(&self) -> bool {
        self.as_given
    }

    /// A `200` response with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::new().body(body)
    }

    /// Sets the status code.
    #[must_use]
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Sets a custom reason phrase (by default the host uses the standard
    /// one for the status).
    #[must_use]
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Appends a header (an existing header of the same name is kept).
    #[must_use]
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.add_header(name, value);
        self
    }

    /// Replaces the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the status code in place.
    pub fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// Sets or clears the reason phrase in place.
    pub fn set_reason(&mut self, reason: Option<String>) {
        self.reason = reason;
    }

    /// Appends a header in place.
    pub fn add_header(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        self.headers.push((name.into(), value.into()));
    }

    /// Replaces the body in place.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
    }

    /// The body, for appending or editing in place.
    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }

    /// Appends text to the body.
    pub fn push_str(&mut self, text: &str) {
        self.body.extend_from_slice(text.as_bytes());
    }

    /// Appends bytes to the body.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.body.extend_from_slice(bytes);
    }

    /// The status code.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// The custom reason phrase, if one was set.
    pub fn reason_phrase(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// All headers, in the order they were added.
    pub fn headers(&self) -> &[(Cow<'static, str>, Cow<'static, str>)] {
        &self.headers
    }

    /// The value of the first header called `name` (ignoring ASCII case).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }

    /// The body bytes.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }
}

/// `write!(response, …)` appends formatted text to the body.
impl fmt::Write for Response {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// Appends bytes to the body; never fails.
impl io::Write for Response {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push_bytes(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    #[test]
    fn builder_and_getters() {
        let mut resp = Response::ok("a")
            .status(404)
            .reason("Nope")
            .header("X-One", "1")
            .header("x-one", "2");
        resp.push_str("b");
        resp.push_bytes(b"c");
        resp.body_mut().push(b'd');
        write!(resp, "{}", 5).expect("writing to a Response never fails");
        assert_eq!(resp.status_code(), 404);
        assert_eq!(resp.reason_phrase(), Some("Nope"));
        assert_eq!(resp.header_value("X-ONE"), Some("1"));
        assert_eq!(resp.headers().len(), 2);
        assert_eq!(resp.body_bytes(), b"abcd5");
    }

    #[test]
    fn new_is_empty_200() {
        let resp = Response::new();
        assert_eq!(resp, Response::default());
        assert_eq!(resp.status_code(), 200);
        assert_eq!(resp.reason_phrase(), None);
        assert!(resp.headers().is_empty() && resp.body_bytes().is_empty());
    }
}
