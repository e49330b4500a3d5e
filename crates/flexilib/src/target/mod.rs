//! Route targets: where a matched request is sent.
//!
//! Today the only target is a native shared library ([`native`]).

pub mod native;
