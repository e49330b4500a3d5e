//! The original FlexiLib sample library, re-created with the Zig SDK
//! (sdk/zig/flexilib.zig); it behaves like examples/rust-sample.
//!
//! * Default: body `" N"` (N = number of request headers), header
//!   `X-custom-foo: bar`.
//! * The headers are scanned in order and the first of these wins (no
//!   `X-custom-foo`): `Host` starting with `iam` → `iam response`;
//!   `x-slow: MS` → sleeps MS ms (1000 if not a number, at most 60 000),
//!   body `i am slow\n\n`.
//! * `x-log-this: TEXT` → TEXT is prepended to the body.
//! * `x-status: CODE` → that status (ignored unless a number in 100..=999).
//! * `x-throw` → the handler returns `error.Thrown`: the SDK answers 500
//!   (or the `x-status` given, if 400 or more) with the body so far.
//!
//! Extensions, replacing the `" N"` body (first present wins):
//! `x-echo-body` → the request body; `x-echo-target` → `METHOD TARGET`;
//! `x-echo-path` → `PATH` and, if there is a query, `?QUERY` shown as
//! `path=PATH query=QUERY`; `x-reason: TEXT` → that reason phrase.
const std = @import("std");
const flexilib = @import("flexilib");

comptime {
    flexilib.exportHandler(handle);
}

const default_slow_ms: u64 = 1000;
const max_slow_ms: u64 = 60_000;

fn handle(req: *const flexilib.Request, res: *flexilib.Response) !void {
    try originalResponse(req, res);
    if (req.header("x-log-this")) |text| try res.prepend(text);
    if (req.header("x-status")) |value| {
        const code = std.fmt.parseInt(u16, std.mem.trim(u8, value, " "), 10) catch 0;
        if (code >= 100 and code <= 999) res.setStatus(code);
    }
    if (req.header("x-reason")) |reason| try res.setReason(reason);
    if (req.hasHeader("x-throw")) return error.Thrown;
}

/// The first `Host: iam…` or `x-slow` header decides; otherwise the default.
fn originalResponse(req: *const flexilib.Request, res: *flexilib.Response) !void {
    var headers = req.headers();
    while (headers.next()) |h| {
        if (std.ascii.eqlIgnoreCase(h.name, "host") and std.mem.startsWith(u8, h.value, "iam")) {
            return res.write("iam response");
        }
        if (std.ascii.eqlIgnoreCase(h.name, "x-slow")) {
            const ms = std.fmt.parseInt(u64, h.value, 10) catch default_slow_ms;
            sleepMs(@min(ms, max_slow_ms));
            return res.write("i am slow\n\n");
        }
    }
    if (req.hasHeader("x-echo-body")) {
        try res.write(req.body());
    } else if (req.hasHeader("x-echo-target")) {
        try res.print("{s} {s}", .{ req.method(), req.target() });
    } else if (req.hasHeader("x-echo-path")) {
        try res.print("path={s} query={s}", .{ req.path(), req.query() orelse "(none)" });
    } else {
        try res.print(" {d}", .{req.headerCount()});
    }
    try res.addHeader("X-custom-foo", "bar");
}

fn sleepMs(ms: u64) void {
    const io = std.Io.Threaded.global_single_threaded.io();
    std.Io.sleep(io, .fromMilliseconds(@intCast(ms)), .awake) catch {};
}
