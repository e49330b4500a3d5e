//! Route targets: where a matched request is sent.
//!
//! * [`native`] — shared libraries called through the C ABI.
//! * [`upstream`] — other HTTP servers, as a reverse proxy.

pub mod native;
pub mod upstream;
