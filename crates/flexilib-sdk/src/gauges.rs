//! Gauges an instance reports on the server's admin listener
//! ([`Instance::gauges`](crate::Instance::gauges), the optional
//! `flexilib_instance_gauges` export).

use std::mem::MaybeUninit;

use flexilib_abi as abi;

/// Where [`Instance::gauges`](crate::Instance::gauges) puts its numbers:
/// the host's buffer, written in place (no allocation).
///
/// Each [`set`](Self::set) adds one gauge, exported by the server as
/// `flexilib_library_<name>{route="<the route>"}` with `help` as its
/// help text. A name is ASCII `[a-z][a-z0-9_]*`, at most
/// [`abi::GAUGE_NAME_MAX`] bytes, not ending in `_total`, `_count`, `_sum`,
/// `_bucket`, `_created` or `_info`, and should start with your runtime's
/// word (`wasm_…`, `worker_…`); the server skips a name it cannot export,
/// and a name given twice (the first counts).
pub struct Gauges<'a> {
    out: Out<'a>,
    /// How many were set (more than the host's buffer holds when it is full).
    count: usize,
}

/// Where [`Gauges::set`] writes.
enum Out<'a> {
    /// The host's buffer.
    Host(&'a mut [MaybeUninit<abi::Gauge>]),
    /// A list, for [`crate::testing::gauges_of`].
    List(&'a mut Vec<(&'static str, &'static str, f64)>),
}

impl<'a> Gauges<'a> {
    /// Gauges written into the host's buffer `out`.
    pub(crate) fn new(out: &'a mut [MaybeUninit<abi::Gauge>]) -> Self {
        Gauges {
            out: Out::Host(out),
            count: 0,
        }
    }

    /// Gauges collected into `list`.
    pub(crate) fn into_list(list: &'a mut Vec<(&'static str, &'static str, f64)>) -> Self {
        Gauges {
            out: Out::List(list),
            count: 0,
        }
    }

    /// Reports gauge `name` = `value`, with `help` (one line).
    pub fn set(&mut self, name: &'static str, help: &'static str, value: f64) {
        match &mut self.out {
            Out::Host(out) => {
                if let Some(slot) = out.get_mut(self.count) {
                    slot.write(abi::Gauge {
                        name: name.as_ptr().cast(),
                        name_len: name.len(),
                        help: help.as_ptr().cast(),
                        help_len: help.len(),
                        value,
                    });
                }
            }
            Out::List(list) => list.push((name, help, value)),
        }
        self.count += 1;
    }

    /// How many gauges were set (the export's return value: the host asks
    /// again with more room when it is more than it gave).
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}
