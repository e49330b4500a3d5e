//! FlexiLib's own HTTP/1.1 server codec, on `httparse`: the bytes of a
//! connection in, `http::Request`s out, `http::Response`s back to bytes.
//! The connection loop that drives it is [`crate::conn`].
//!
//! * [`head`] — parsing a request head (limits, framing, `Connection`,
//!   `Expect`), zero-copy: header values share the read buffer.
//! * [`body`] — the request body a target reads ([`RequestBody`]): whole
//!   when it came with the head, else streamed from the connection with
//!   back-pressure; the chunked decoder.
//! * [`encode`] — writing a response head and framing its body
//!   (`Content-Length`, chunked, or to the close).
//! * [`upgrade`] — handing the connection to whoever answered `101`.

pub mod encode;
pub mod head;
pub mod request_body;
pub mod upgrade;

pub use request_body::RequestBody;
pub use upgrade::OnUpgrade;
