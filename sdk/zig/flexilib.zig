//! FlexiLib SDK for Zig handler libraries (Zig 0.17; ABI versions 1 and 2).
//!
//! Two ways to write a library; use one of them per library.
//!
//! **A handler** (ABI 1): one function, exported with `exportHandler`:
//!
//! ```zig
//! const std = @import("std");
//! const flexilib = @import("flexilib");
//!
//! fn handle(req: *const flexilib.Request, res: *flexilib.Response) !void {
//!     try res.print("hello from {s}", .{req.path()});
//!     try res.addHeader("X-Handler", "hello");
//! }
//!
//! comptime {
//!     flexilib.exportHandler(handle);
//! }
//! ```
//!
//! `exportHandler` exports `handle_request` and `flexilib_init`. The request
//! is a view of the host's memory (valid during the call only); the
//! response, and anything allocated with `req.arena`, lives in the host's
//! per-request arena: nothing to free, reclaimed by the server after it has
//! copied the response. A Zig error returned by the handler becomes a 500
//! (unless the handler already set a status of 400 or more); what the
//! handler wrote so far is kept, and the error name is logged to stderr.
//! It needs a FlexiLib-rs host (ABI ≥ 1): `flexilib_init` refuses an older
//! host, and requests are answered only after it succeeded.
//!
//! **An instance type** (ABI 2), exported with `exportInstance`: the server
//! builds one value per route from the route's options
//! (`/w = lib/libmine.so template=page.txt name=x` in `proxy.ini`) and
//! rebuilds it when a file it read changes; each request may be answered
//! now, later from any thread (`Call.respondLater` → `Responder`), or with a
//! body streamed in chunks (`Call.stream` → `BodyWriter`):
//!
//! ```zig
//! const Page = struct {
//!     gpa: std.mem.Allocator,
//!     template: []u8,
//!
//!     pub fn init(config: *const flexilib.InstanceConfig) !Page {
//!         const file = config.option("template") orelse
//!             return config.fail("the route needs template=FILE", .{});
//!         // Read and watched: editing the file builds a new instance.
//!         const template = config.readFile(file) catch |err|
//!             return config.fail("cannot read {s}: {t}", .{ file, err });
//!         return .{ .gpa = config.gpa, .template = template };
//!     }
//!
//!     pub fn deinit(page: *Page) void {
//!         page.gpa.free(page.template);
//!     }
//!
//!     pub fn handle(page: *const Page, req: *const flexilib.Request, res: *flexilib.Response, call: flexilib.Call) !void {
//!         if (std.mem.endsWith(u8, req.path(), "/count")) {
//!             var writer = try call.stream(res); // res's status and headers
//!             errdefer writer.abort();
//!             (try std.Thread.spawn(.{}, count, .{writer})).detach();
//!             return;
//!         }
//!         try res.write(page.template);
//!     }
//!
//!     fn count(writer_: flexilib.BodyWriter) void {
//!         var writer = writer_;
//!         defer writer.abort(); // does nothing once finished
//!         for (1..4) |i| writer.print("line {d}\n", .{i}) catch return;
//!         writer.finish();
//!     }
//! };
//!
//! comptime {
//!     flexilib.exportInstance(Page);
//! }
//! ```
//!
//! `exportInstance` exports `handle_request`, `flexilib_init` (refusing
//! hosts older than ABI 2, so an older server will not load the library),
//! `flexilib_abi_version`, `flexilib_instance_new` and
//! `flexilib_instance_free`. See `InstanceConfig`, `Call`, `Responder` and
//! `BodyWriter` for the rules, and `examples/zig-instance` for a library.
//!
//! A library that starts threads with `std.Thread` (as answering later and
//! streaming usually do) must link libc (`-lc`, or `.link_libc = true` in
//! `build.zig`), so that its threads are pthreads: without libc, Zig starts
//! threads its own way, which does not work in a library loaded by another
//! program (the worker aborts with "reached unreachable code").
//!
//! Zig has no destructors, so what Rust's SDK does on drop is the caller's
//! to do here: every `BodyWriter` must end with `finish` (a complete body)
//! or `abort` (the connection is cut, so the client never mistakes a
//! truncated body for a whole one) — `defer writer.abort()` right after
//! getting it does that, as `abort` does nothing after `finish`. Likewise
//! every `Responder` must `complete` (or `abandon`, a 500); a request never
//! completed is answered 504 by the server after
//! `LIBRARY_COMPLETION_TIMEOUT_SECONDS`, and a body never ended keeps its
//! connection busy.
//!
//! This is not the original FlexiLib's `zigInit` interface, whose allocator
//! has Zig 0.13's layout; nothing here depends on Zig's allocator ABI.
const std = @import("std");
const builtin = @import("builtin");

/// The ABI version this file describes (`FLEXILIB_ABI_VERSION`).
pub const abi_version: usize = 2;
/// The lowest host ABI version `exportHandler` libraries run on.
pub const handler_host_abi_version: usize = 1;
/// The lowest host ABI version `exportInstance` libraries run on.
pub const instance_host_abi_version: usize = 2;

/// The C structs and constants of `include/flexilib.h`, field for field,
/// with its names.
pub const c = struct {
    pub const FLEXILIB_ABI_VERSION: usize = 2;

    pub const flexilib_header = extern struct {
        name_ptr: ?[*]const u8,
        name_len: usize,
        value_ptr: ?[*]const u8,
        value_len: usize,
    };

    /// `size` bytes aligned to `alignment` from the request arena, or NULL.
    pub const flexilib_alloc_fn = *const fn (arena: ?*anyopaque, size: usize, alignment: usize) callconv(.c) ?*anyopaque;

    pub const flexilib_request = extern struct {
        target: ?[*]const u8,
        target_len: usize,
        method: ?[*]const u8,
        method_len: usize,
        content: ?[*]const u8,
        content_len: usize,
        headers: ?[*]const flexilib_header,
        headers_len: usize,
        // Appended in ABI 1 (FlexiLib-rs).
        abi_version: usize,
        alloc: ?flexilib_alloc_fn,
        arena: ?*anyopaque,
        // Appended in ABI 2: filled in for libraries exporting
        // `flexilib_abi_version` (2). Not present in what older hosts pass.
        /// The route's instance, or NULL.
        instance: ?*anyopaque = null,
        /// This request, for the host callbacks.
        call: u64 = 0,
        /// The host callbacks.
        host: ?*const flexilib_host = null,
    };

    pub const flexilib_response = extern struct {
        ptr: ?[*]const u8,
        len: usize,
        headers: ?[*]const flexilib_header,
        headers_len: usize,
        /// 0 means 200.
        status: usize,
        reason_ptr: ?[*]const u8,
        reason_len: usize,
    };

    // ---- ABI 2 ----

    /// A response with flags (`FLEXILIB_RESPONSE_*`).
    pub const flexilib_response_v2 = extern struct {
        base: flexilib_response,
        flags: usize = 0,
    };

    /// The body is streamed through `stream_write` and ended by `stream_end`.
    pub const FLEXILIB_RESPONSE_STREAM: usize = 1;
    /// Send the headers exactly as given: the host adds no content-type.
    pub const FLEXILIB_RESPONSE_AS_GIVEN: usize = 2;

    /// `handle_request`'s "the response comes later" (`FLEXILIB_PENDING`).
    pub const FLEXILIB_PENDING: *anyopaque = @ptrFromInt(1);

    pub const FLEXILIB_OK: c_int = 0;
    /// Buffer full: wait for `stream_on_writable`, write again.
    pub const FLEXILIB_FULL: c_int = 1;
    /// The client went away (or the body ended): stop.
    pub const FLEXILIB_CLOSED: c_int = 2;
    /// Unknown call, or not allowed in its state.
    pub const FLEXILIB_INVALID: c_int = -1;

    /// `stream_write` flag: return `FLEXILIB_FULL` instead of waiting.
    pub const FLEXILIB_WRITE_NONBLOCK: c_int = 1;

    pub const flexilib_writable_fn = *const fn (data: ?*anyopaque) callconv(.c) void;

    /// The host's callbacks (`req->host`); each may be called from any thread.
    pub const flexilib_host = extern struct {
        abi_version: usize,
        complete: *const fn (call: u64, response: ?*const flexilib_response_v2) callconv(.c) c_int,
        stream_write: *const fn (call: u64, data: ?[*]const u8, len: usize, flags: c_int) callconv(.c) c_int,
        stream_on_writable: *const fn (call: u64, callback: flexilib_writable_fn, data: ?*anyopaque) callconv(.c) c_int,
        stream_end: *const fn (call: u64, ok: c_int) callconv(.c) c_int,
    };

    /// A route option `key=value`; not NUL-terminated.
    pub const flexilib_option = extern struct {
        key: ?[*]const u8,
        key_len: usize,
        value: ?[*]const u8,
        value_len: usize,
    };

    pub const flexilib_instance_config = extern struct {
        abi_version: usize,
        route: ?[*]const u8,
        route_len: usize,
        /// NUL-terminated: the config file's directory.
        config_dir: ?[*]const u8,
        config_dir_len: usize,
        options: ?[*]const flexilib_option,
        options_len: usize,
        host_context: ?*anyopaque,
        depends_on: *const fn (host_context: ?*anyopaque, path: ?[*]const u8, len: usize) callconv(.c) void,
        fail: *const fn (host_context: ?*anyopaque, message: ?[*]const u8, len: usize) callconv(.c) void,
    };
};

// The sizes and offsets of the C structs on 64-bit Linux, as a check on the
// above.
comptime {
    std.debug.assert(@sizeOf(c.flexilib_header) == 32);
    std.debug.assert(@sizeOf(c.flexilib_request) == 112);
    std.debug.assert(@offsetOf(c.flexilib_request, "arena") == 80);
    std.debug.assert(@offsetOf(c.flexilib_request, "host") == 104);
    std.debug.assert(@sizeOf(c.flexilib_response) == 56);
    std.debug.assert(@sizeOf(c.flexilib_response_v2) == 64);
    std.debug.assert(@sizeOf(c.flexilib_host) == 40);
    std.debug.assert(@sizeOf(c.flexilib_option) == 32);
    std.debug.assert(@sizeOf(c.flexilib_instance_config) == 80);
    std.debug.assert(@offsetOf(c.flexilib_instance_config, "host_context") == 56);
}

/// A request header; names arrive lowercase.
pub const Header = struct {
    name: []const u8,
    value: []const u8,
};

/// A view of the request the host passed to `handle_request`.
pub const Request = struct {
    raw: *const c.flexilib_request,
    /// The host's request arena: allocations live until the request ends
    /// and are never freed by the library (`free` does nothing).
    arena: std.mem.Allocator,

    /// A view of `raw`; `raw.alloc` must be set (an ABI ≥ 1 host).
    pub fn init(raw: *const c.flexilib_request) Request {
        return .{ .raw = raw, .arena = .{ .ptr = @constCast(raw), .vtable = &arena_vtable } };
    }

    pub fn method(req: *const Request) []const u8 {
        return bytes(req.raw.method, req.raw.method_len);
    }

    /// Path and query, as received.
    pub fn target(req: *const Request) []const u8 {
        return bytes(req.raw.target, req.raw.target_len);
    }

    /// The target up to `?`.
    pub fn path(req: *const Request) []const u8 {
        const t = req.target();
        return t[0 .. std.mem.indexOfScalar(u8, t, '?') orelse t.len];
    }

    /// The target after the first `?`, if there is one.
    pub fn query(req: *const Request) ?[]const u8 {
        const t = req.target();
        const at = std.mem.indexOfScalar(u8, t, '?') orelse return null;
        return t[at + 1 ..];
    }

    /// The value of the first header called `name`, ignoring case.
    pub fn header(req: *const Request, name: []const u8) ?[]const u8 {
        var it = req.headers();
        while (it.next()) |h| {
            if (std.ascii.eqlIgnoreCase(h.name, name)) return h.value;
        }
        return null;
    }

    pub fn hasHeader(req: *const Request, name: []const u8) bool {
        return req.header(name) != null;
    }

    pub fn headerCount(req: *const Request) usize {
        return if (req.raw.headers == null) 0 else req.raw.headers_len;
    }

    /// The headers in the order they were received.
    pub fn headers(req: *const Request) HeaderIterator {
        return .{ .raw = req.raw.headers, .len = req.headerCount() };
    }

    pub fn body(req: *const Request) []const u8 {
        return bytes(req.raw.content, req.raw.content_len);
    }
};

pub const HeaderIterator = struct {
    raw: ?[*]const c.flexilib_header,
    len: usize,
    index: usize = 0,

    pub fn next(it: *HeaderIterator) ?Header {
        if (it.index >= it.len) return null;
        const h = it.raw.?[it.index];
        it.index += 1;
        return .{ .name = bytes(h.name_ptr, h.name_len), .value = bytes(h.value_ptr, h.value_len) };
    }
};

/// The response under construction; every byte lives in the request arena.
pub const Response = struct {
    arena: std.mem.Allocator,
    /// HTTP status (100..=999).
    status: u16 = 200,
    /// Reason phrase; null for the standard one.
    reason: ?[]const u8 = null,
    headers: std.ArrayList(c.flexilib_header) = .empty,
    body: std.ArrayList(u8) = .empty,
    /// ABI 2: send the headers exactly as given (the server adds no
    /// `content-type`). Only instance libraries (`exportInstance`) can: an
    /// `exportHandler` response has no flags, so it is ignored there.
    as_given: bool = false,

    pub fn init(arena: std.mem.Allocator) Response {
        return .{ .arena = arena };
    }

    pub fn setStatus(res: *Response, status: u16) void {
        res.status = status;
    }

    /// Sets the reason phrase (copied).
    pub fn setReason(res: *Response, reason: []const u8) !void {
        res.reason = try res.arena.dupe(u8, reason);
    }

    /// Adds a header (name and value are copied).
    pub fn addHeader(res: *Response, name: []const u8, value: []const u8) !void {
        const n = try res.arena.dupe(u8, name);
        const v = try res.arena.dupe(u8, value);
        try res.headers.append(res.arena, .{ .name_ptr = n.ptr, .name_len = n.len, .value_ptr = v.ptr, .value_len = v.len });
    }

    /// Appends to the body.
    pub fn write(res: *Response, bytes_: []const u8) !void {
        try res.body.appendSlice(res.arena, bytes_);
    }

    /// Appends formatted text to the body.
    pub fn print(res: *Response, comptime fmt: []const u8, args: anytype) !void {
        try res.body.print(res.arena, fmt, args);
    }

    /// Inserts at the start of the body.
    pub fn prepend(res: *Response, bytes_: []const u8) !void {
        try res.body.insertSlice(res.arena, 0, bytes_);
    }

    /// Replaces the body.
    pub fn setBody(res: *Response, bytes_: []const u8) !void {
        res.body.clearRetainingCapacity();
        try res.write(bytes_);
    }

    /// ABI 2: send the headers exactly as given (see `as_given`).
    pub fn setAsGiven(res: *Response) void {
        res.as_given = true;
    }

    /// The C response for the host, in the arena.
    pub fn toC(res: *const Response) !*c.flexilib_response {
        const out = try res.arena.create(c.flexilib_response);
        out.* = res.base(true);
        return out;
    }

    /// The ABI-2 C response for the host, in the arena: `flags`
    /// (`c.FLEXILIB_RESPONSE_STREAM` or 0) plus `as_given`. A streamed
    /// response's body is left out.
    pub fn toCV2(res: *const Response, flags: usize) !*c.flexilib_response_v2 {
        const out = try res.arena.create(c.flexilib_response_v2);
        out.* = res.rawV2(flags);
        return out;
    }

    /// The ABI-2 C response as a value pointing into `res` (headers, body
    /// and reason stay where they are), for `complete`, which copies it
    /// during the call.
    pub fn rawV2(res: *const Response, flags: usize) c.flexilib_response_v2 {
        const stream = flags & c.FLEXILIB_RESPONSE_STREAM != 0;
        const as_given = if (res.as_given) c.FLEXILIB_RESPONSE_AS_GIVEN else 0;
        return .{ .base = res.base(!stream), .flags = flags | as_given };
    }

    fn base(res: *const Response, with_body: bool) c.flexilib_response {
        const reason = res.reason orelse "";
        const body_ = if (with_body) res.body.items else "";
        return .{
            .ptr = body_.ptr,
            .len = body_.len,
            .headers = res.headers.items.ptr,
            .headers_len = res.headers.items.len,
            .status = res.status,
            .reason_ptr = reason.ptr,
            .reason_len = reason.len,
        };
    }
};

/// What a handler looks like: read `req`, fill in `res`.
pub const Handler = fn (req: *const Request, res: *Response) anyerror!void;

/// The host ABI version passed to `flexilib_init`; 0 until then.
var host_abi_version: std.atomic.Value(usize) = .init(0);

const log = std.log.scoped(.flexilib);

/// Exports `handle_request` and `flexilib_init` for `handler`. Call it once,
/// in a `comptime` block at the top level of the library.
pub fn exportHandler(comptime handler: Handler) void {
    const exports = struct {
        fn handleRequest(raw: ?*const c.flexilib_request) callconv(.c) ?*c.flexilib_response {
            return dispatch(handler, raw);
        }
        fn flexilibInit(version: usize) callconv(.c) c_int {
            return init(version);
        }
    };
    @export(&exports.handleRequest, .{ .name = "handle_request" });
    @export(&exports.flexilibInit, .{ .name = "flexilib_init" });
}

/// Records the host's ABI version; non-zero (the load fails) below ABI 1.
pub fn init(version: usize) c_int {
    host_abi_version.store(version, .release);
    return if (version < handler_host_abi_version) 1 else 0;
}

/// Runs `handler` on a raw request and returns the C response, or NULL
/// (the host answers 500) when the host is too old or memory ran out.
pub fn dispatch(comptime handler: Handler, raw: ?*const c.flexilib_request) ?*c.flexilib_response {
    if (host_abi_version.load(.acquire) < handler_host_abi_version) return null;
    const r = raw orelse return null;
    if (r.alloc == null) return null;
    const req: Request = .init(r);
    var res: Response = .init(req.arena);
    handler(&req, &res) catch |err| {
        // (Not in unit tests, where a logged error fails the test.)
        if (!builtin.is_test) log.err("handler failed: {s} ({s} {s})", .{ @errorName(err), req.method(), req.target() });
        if (res.status < 400) res.status = 500;
    };
    return res.toC() catch null;
}

// ===================================================================== //
// ABI 2: per-route instances, answering later, streaming                //
// ===================================================================== //

/// The allocator the SDK builds instances with (`InstanceConfig.gpa`):
/// thread-safe, and it gives memory back to the system when freed, so a
/// library unloaded after a reload leaves nothing behind. For memory that
/// lives as long as one request, use `req.arena` instead.
pub const allocator: std.mem.Allocator = std.heap.page_allocator;

/// An `std.Io` for libraries, which have no `main` to make one in: Zig's
/// global thread-based `Io` (files, sleeping, `std.Io.Event`; no
/// `async`/`concurrent`). `InstanceConfig.io` is this.
pub fn io() std.Io {
    return std.Io.Threaded.global_single_threaded.io();
}

/// A route option, `key=value` in `proxy.ini`.
pub const Option = struct {
    key: []const u8,
    value: []const u8,
};

pub const OptionIterator = struct {
    raw: ?[*]const c.flexilib_option,
    len: usize,
    index: usize = 0,

    pub fn next(it: *OptionIterator) ?Option {
        if (it.index >= it.len) return null;
        const o = it.raw.?[it.index];
        it.index += 1;
        return .{ .key = bytes(o.key, o.key_len), .value = bytes(o.value, o.value_len) };
    }
};

/// What an instance is built from (`T.init(config)`): the route's options
/// and where the config file is. Valid during `init` only: copy what you
/// keep (with `gpa`).
pub const InstanceConfig = struct {
    raw: *const c.flexilib_instance_config,
    /// For what the instance keeps; free it in `deinit`. `readFile`
    /// allocates with it. (`flexilib.allocator` in a library.)
    gpa: std.mem.Allocator,
    /// For file access during the build (`flexilib.io()` in a library).
    io: std.Io,
    /// Where `fail` writes its message.
    failure: *Failure,

    /// The message `fail` formats, sent to the host instead of the error
    /// name.
    pub const Failure = struct {
        buffer: [1024]u8 = undefined,
        len: usize = 0,

        pub fn message(failure: *const Failure) []const u8 {
            return failure.buffer[0..failure.len];
        }
    };

    /// The route's key as written in the config, e.g. `/w`.
    pub fn route(config: *const InstanceConfig) []const u8 {
        return bytes(config.raw.route, config.raw.route_len);
    }

    /// The directory of the config file.
    pub fn configDir(config: *const InstanceConfig) []const u8 {
        return bytes(config.raw.config_dir, config.raw.config_dir_len);
    }

    /// The value of option `key`, if given (the first, if given twice).
    pub fn option(config: *const InstanceConfig, key: []const u8) ?[]const u8 {
        var it = config.options();
        while (it.next()) |o| {
            if (std.mem.eql(u8, o.key, key)) return o.value;
        }
        return null;
    }

    /// Every option, in config order.
    pub fn options(config: *const InstanceConfig) OptionIterator {
        return .{ .raw = config.raw.options, .len = if (config.raw.options == null) 0 else config.raw.options_len };
    }

    /// `path` resolved against the config file's directory (unchanged if
    /// absolute), allocated with `gpa`.
    pub fn resolve(config: *const InstanceConfig, gpa: std.mem.Allocator, path: []const u8) ![]u8 {
        if (std.fs.path.isAbsolute(path)) return gpa.dupe(u8, path);
        return std.fs.path.join(gpa, &.{ config.configDir(), path });
    }

    /// Names a file the instance read: when it changes, a new instance is
    /// built. Relative paths are relative to `configDir`.
    pub fn dependsOn(config: *const InstanceConfig, path: []const u8) void {
        config.raw.depends_on(config.raw.host_context, path.ptr, path.len);
    }

    /// Reads the file at `path` (relative to `configDir` unless absolute),
    /// allocated with `gpa` (the caller frees it), and names it as a
    /// dependency, even when reading fails (so that creating or fixing it
    /// rebuilds the instance).
    pub fn readFile(config: *const InstanceConfig, path: []const u8) ![]u8 {
        config.dependsOn(path);
        const full = try config.resolve(config.gpa, path);
        defer config.gpa.free(full);
        return std.Io.Dir.cwd().readFileAlloc(config.io, full, config.gpa, .unlimited);
    }

    /// Records why the instance cannot be built and returns
    /// `error.InstanceFailed` for `init` to return: the host logs the
    /// message with the route (instead of the error name) and the route
    /// answers 502, or keeps its current instance.
    ///
    ///     const file = config.option("template") orelse
    ///         return config.fail("the route needs template=FILE", .{});
    pub fn fail(config: *const InstanceConfig, comptime fmt: []const u8, args: anytype) error{InstanceFailed} {
        var w: std.Io.Writer = .fixed(&config.failure.buffer);
        w.print(fmt, args) catch {}; // too long: cut
        config.failure.len = w.end;
        return error.InstanceFailed;
    }
};

/// How the handler chose to answer; read by the SDK when `handle` returns.
pub const Answer = union(enum) {
    /// With `res` (the default).
    now,
    /// A `Responder` completes it.
    later,
    /// This head; a `BodyWriter` writes the body.
    stream: Response,
};

/// The request being handled, as the host's callbacks know it (ABI 2).
/// Passed by value to `handle`; at most one of `respondLater` and `stream`
/// may be called, once: else the handler's `res` is the answer.
pub const Call = struct {
    id: u64,
    host: *const c.flexilib_host,
    /// The request (a copy of the handler's view).
    request: Request,
    answer: *Answer,

    pub const Error = error{
        /// `respondLater` or `stream` was already called for this request.
        AlreadyAnswered,
    };

    /// Answers later: call `Responder.complete` (from any thread, exactly
    /// once) when the response is ready. Meanwhile the request holds no
    /// handler slot, and it stays valid: the `Responder` carries it, and
    /// `responder.request.arena` may be used, from one thread at a time.
    /// So once the `Responder` is handed to another thread, the handler
    /// must not use `req.arena` (or `res`) again. What the handler does
    /// with `res` is ignored, and so is an error it returns afterwards
    /// (logged): the `Responder` still answers.
    pub fn respondLater(call: Call) Error!Responder {
        if (call.answer.* != .now) return error.AlreadyAnswered;
        call.answer.* = .later;
        return .{ .id = call.id, .host = call.host, .request = call.request };
    }

    /// Answers now with `head` (its status, reason and headers, copied
    /// now; its body is ignored) and a body written through the returned
    /// `BodyWriter`, from any thread; writes made before `handle` returns
    /// are kept and follow the head. An error the handler returns
    /// afterwards is logged and the head still goes out. The writer must
    /// end with `finish` or `abort` (see `BodyWriter`).
    pub fn stream(call: Call, head: *const Response) Error!BodyWriter {
        if (call.answer.* != .now) return error.AlreadyAnswered;
        call.answer.* = .{ .stream = head.* };
        return .{ .id = call.id, .host = call.host };
    }
};

/// Completes a request answered later (`Call.respondLater`): a value to
/// move to any thread. Complete it exactly once; `abandon` (a 500) does
/// nothing after `complete`, so `defer responder.abandon()` in the thread
/// that owns it guarantees an answer.
pub const Responder = struct {
    id: u64,
    host: *const c.flexilib_host,
    /// The request, valid until `complete`: read it, and allocate from
    /// `request.arena` (from one thread at a time).
    request: Request,
    done: bool = false,

    /// An empty response in the request's arena (valid until `complete`).
    pub fn response(r: *const Responder) Response {
        return .init(r.request.arena);
    }

    /// Sends `res` (status, reason, headers, body, `as_given`): the host
    /// copies it during the call, so `res` may live anywhere. If the client
    /// left meanwhile, the host drops it. Afterwards the request (and its
    /// arena) is gone. Does nothing the second time.
    pub fn complete(r: *Responder, res: *const Response) void {
        r.send(res, 0);
    }

    /// Sends `head` now (its body ignored) and returns the writer for the
    /// body (see `BodyWriter`).
    pub fn stream(r: *Responder, head: *const Response) BodyWriter {
        const was_done = r.done;
        r.send(head, c.FLEXILIB_RESPONSE_STREAM);
        return .{ .id = r.id, .host = r.host, .ended = was_done };
    }

    /// Answers 500 unless already completed (Rust's SDK does this when a
    /// `Responder` is dropped unused).
    pub fn abandon(r: *Responder) void {
        if (r.done) return;
        r.done = true;
        const message = "responder abandoned without an answer";
        const raw: c.flexilib_response_v2 = .{ .base = .{
            .ptr = message.ptr,
            .len = message.len,
            .headers = null,
            .headers_len = 0,
            .status = 500,
            .reason_ptr = null,
            .reason_len = 0,
        } };
        _ = r.host.complete(r.id, &raw);
    }

    fn send(r: *Responder, res: *const Response, flags: usize) void {
        if (r.done) return;
        r.done = true;
        const raw = res.rawV2(flags);
        _ = r.host.complete(r.id, &raw);
    }
};

/// Writes a streamed body (`Call.stream`, `Responder.stream`): a value to
/// move to the thread that produces the body. Chunks reach the client as
/// they are written (chunked encoding, or the `content-length` the head
/// declares).
///
/// **End it with `finish` or `abort`.** Zig has no destructors: a writer
/// never ended keeps its connection busy. `abort` cuts the connection, so
/// the client never mistakes a truncated body for a whole one; it does
/// nothing after `finish`, so `defer writer.abort();` right after getting
/// the writer (in the thread that owns it) ends every path safely.
pub const BodyWriter = struct {
    id: u64,
    host: *const c.flexilib_host,
    ended: bool = false,

    pub const Error = error{
        /// The host already holds 256 KiB the client has not taken (only
        /// from `tryWrite`): wait for `onWritable`, then write again.
        Full,
        /// The client went away (or the body ended): stop producing.
        Closed,
    };

    /// Writes `data` (the host copies it), waiting while the host's buffer
    /// is full, so a fast producer runs at the client's pace. Do not call
    /// it from a thread the body's consumer depends on.
    pub fn write(w: *const BodyWriter, data: []const u8) error{Closed}!void {
        return w.writeFlags(data, 0) catch error.Closed;
    }

    /// Writes `data` if the host has room, without waiting.
    pub fn tryWrite(w: *const BodyWriter, data: []const u8) Error!void {
        return w.writeFlags(data, c.FLEXILIB_WRITE_NONBLOCK);
    }

    /// Writes formatted text (waiting like `write`).
    pub fn print(w: *const BodyWriter, comptime fmt: []const u8, args: anytype) error{Closed}!void {
        var buffer: [512]u8 = undefined;
        var adapter = w.writer(&buffer);
        adapter.interface.print(fmt, args) catch return error.Closed;
        adapter.interface.flush() catch return error.Closed;
    }

    fn writeFlags(w: *const BodyWriter, data: []const u8, flags: c_int) Error!void {
        if (w.ended) return error.Closed;
        return switch (w.host.stream_write(w.id, data.ptr, data.len, flags)) {
            c.FLEXILIB_OK => {},
            c.FLEXILIB_FULL => error.Full,
            else => error.Closed,
        };
    }

    /// Calls `callback(context)` once, from any thread, when the host has
    /// room for more (at once if it has) or the body closed; at once, on
    /// this thread, if the host refuses (the body already ended). `context`
    /// is a single-item pointer that must stay valid until then.
    pub fn onWritable(w: *const BodyWriter, context: anytype, comptime callback: fn (@TypeOf(context)) void) void {
        const Context = @TypeOf(context);
        const info = @typeInfo(Context);
        if (info != .pointer or info.pointer.size != .one) @compileError("onWritable: context must be a single-item pointer, not " ++ @typeName(Context));
        const trampoline = struct {
            fn run(data: ?*anyopaque) callconv(.c) void {
                callback(@ptrCast(@alignCast(data.?)));
            }
        };
        const data: *anyopaque = @ptrCast(@constCast(context));
        if (w.ended or w.host.stream_on_writable(w.id, trampoline.run, data) != c.FLEXILIB_OK) callback(context);
    }

    /// Ends the body as complete. The writer is spent afterwards.
    pub fn finish(w: *BodyWriter) void {
        w.end(true);
    }

    /// Ends the body as incomplete: the client's connection is cut. Does
    /// nothing after `finish` (or a previous `abort`).
    pub fn abort(w: *BodyWriter) void {
        w.end(false);
    }

    fn end(w: *BodyWriter, ok: bool) void {
        if (w.ended) return;
        w.ended = true;
        _ = w.host.stream_end(w.id, @intFromBool(ok));
    }

    /// A `std.Io.Writer` over the body (`adapter.interface`), buffering
    /// in `buffer`; a write failing with `error.WriteFailed` means the
    /// client left. Keep the adapter where it is (the interface points
    /// into it) and `flush` it before `finish`.
    pub fn writer(w: *const BodyWriter, buffer: []u8) Writer {
        return .{ .body = w, .interface = .{ .vtable = &.{ .drain = Writer.drain }, .buffer = buffer } };
    }

    pub const Writer = struct {
        body: *const BodyWriter,
        interface: std.Io.Writer,

        fn drain(io_w: *std.Io.Writer, data: []const []const u8, splat: usize) std.Io.Writer.Error!usize {
            const self: *Writer = @alignCast(@fieldParentPtr("interface", io_w));
            try self.put(io_w.buffered());
            io_w.end = 0;
            var written: usize = 0;
            for (data[0 .. data.len - 1]) |slice| {
                try self.put(slice);
                written += slice.len;
            }
            const pattern = data[data.len - 1];
            for (0..splat) |_| {
                try self.put(pattern);
                written += pattern.len;
            }
            return written;
        }

        fn put(self: *Writer, data: []const u8) std.Io.Writer.Error!void {
            if (data.len == 0) return;
            self.body.write(data) catch return error.WriteFailed;
        }
    };
};

/// Exports an instance type `T` as an ABI-2 library: `handle_request`,
/// `flexilib_init` (refusing hosts older than ABI 2), `flexilib_abi_version`,
/// `flexilib_instance_new` and `flexilib_instance_free`. Call it once, in a
/// `comptime` block at the top level of the library, instead of
/// `exportHandler`. `T` declares:
///
/// * `pub fn init(config: *const InstanceConfig) !T` — builds the route's
///   instance (an error: the host logs `config.fail`'s message, else the
///   error name, and the route answers 502 or keeps its current instance).
///   The SDK moves the value to the heap (`flexilib.allocator`), so it must
///   not point into itself.
/// * `pub fn handle(self: *T, req: *const Request, res: *Response, call: Call) !void`
///   (`self: *const T` works too) — runs on several threads at once, so
///   keep mutable state behind atomics or locks. Fill in `res` to answer
///   now, or call `call.respondLater()` / `call.stream(head)`. An error
///   answers 500 as with `exportHandler`, unless the call was already
///   answered another way.
/// * optionally `pub fn deinit(self: *T) void` — called when the instance
///   is freed, after its last request.
pub fn exportInstance(comptime T: type) void {
    comptime checkInstance(T);
    const exports = struct {
        fn handleRequest(raw: ?*c.flexilib_request) callconv(.c) ?*anyopaque {
            return dispatchInstance(T, raw);
        }
        fn flexilibInit(version: usize) callconv(.c) c_int {
            return initInstance(version);
        }
        fn abiVersion() callconv(.c) usize {
            return abi_version;
        }
        fn instanceNew(config: ?*const c.flexilib_instance_config) callconv(.c) ?*anyopaque {
            return newInstance(T, config, allocator, io());
        }
        fn instanceFree(instance: ?*anyopaque) callconv(.c) void {
            freeInstance(T, @ptrCast(@alignCast(instance)), allocator);
        }
    };
    @export(&exports.handleRequest, .{ .name = "handle_request" });
    @export(&exports.flexilibInit, .{ .name = "flexilib_init" });
    @export(&exports.abiVersion, .{ .name = "flexilib_abi_version" });
    @export(&exports.instanceNew, .{ .name = "flexilib_instance_new" });
    @export(&exports.instanceFree, .{ .name = "flexilib_instance_free" });
}

fn checkInstance(comptime T: type) void {
    const name = @typeName(T);
    if (!@hasDecl(T, "init")) @compileError(name ++ " needs `pub fn init(config: *const flexilib.InstanceConfig) !" ++ name ++ "`");
    if (!@hasDecl(T, "handle")) @compileError(name ++ " needs `pub fn handle(self: *" ++ name ++ ", req: *const flexilib.Request, res: *flexilib.Response, call: flexilib.Call) !void`");
}

/// Records the host's ABI version; non-zero (the load fails) below ABI 2.
pub fn initInstance(version: usize) c_int {
    host_abi_version.store(version, .release);
    return if (version < instance_host_abi_version) 1 else 0;
}

/// Builds `T` from the host's config with `gpa` and `io_`: a pointer for
/// `req->instance`, or NULL after telling the host why.
pub fn newInstance(comptime T: type, raw: ?*const c.flexilib_instance_config, gpa: std.mem.Allocator, io_: std.Io) ?*T {
    const r = raw orelse return null;
    var failure: InstanceConfig.Failure = .{};
    const config: InstanceConfig = .{ .raw = r, .gpa = gpa, .io = io_, .failure = &failure };
    const built = T.init(&config);
    const value = if (@typeInfo(@TypeOf(built)) == .error_union) built catch |err| {
        const message = if (failure.len > 0) failure.message() else @errorName(err);
        r.fail(r.host_context, message.ptr, message.len);
        return null;
    } else built;
    const instance = gpa.create(T) catch {
        if (@hasDecl(T, "deinit")) {
            var unused = value;
            unused.deinit();
        }
        const message = "OutOfMemory";
        r.fail(r.host_context, message.ptr, message.len);
        return null;
    };
    instance.* = value;
    return instance;
}

/// Frees an instance made by `newInstance` with the same `gpa`, after
/// `T.deinit` if there is one.
pub fn freeInstance(comptime T: type, instance: ?*T, gpa: std.mem.Allocator) void {
    const self = instance orelse return;
    if (@hasDecl(T, "deinit")) self.deinit();
    gpa.destroy(self);
}

/// Runs `T.handle` on a raw ABI-2 request and returns what `handle_request`
/// returns: the response (`c.flexilib_response_v2`), `c.FLEXILIB_PENDING`,
/// or NULL (the host answers 500) when the host is too old, the request has
/// no instance or memory ran out.
pub fn dispatchInstance(comptime T: type, raw: ?*c.flexilib_request) ?*anyopaque {
    if (host_abi_version.load(.acquire) < instance_host_abi_version) return null;
    const r = raw orelse return null;
    if (r.alloc == null) return null;
    const host = r.host orelse return null;
    const self: *T = @ptrCast(@alignCast(r.instance orelse return null));
    const req: Request = .init(r);
    var res: Response = .init(req.arena);
    var answer: Answer = .now;
    const call: Call = .{ .id = r.call, .host = host, .request = req, .answer = &answer };
    T.handle(self, &req, &res, call) catch |err| switch (answer) {
        .now => {
            if (!builtin.is_test) log.err("handler failed: {s} ({s} {s})", .{ @errorName(err), req.method(), req.target() });
            if (res.status < 400) res.status = 500;
        },
        // The request may be another thread's already: do not read it.
        .later, .stream => if (!builtin.is_test) log.err("handler failed after answering: {s}", .{@errorName(err)}),
    };
    const out: ?*c.flexilib_response_v2 = switch (answer) {
        .now => res.toCV2(0) catch null,
        .later => return c.FLEXILIB_PENDING,
        .stream => |head| head.toCV2(c.FLEXILIB_RESPONSE_STREAM) catch null,
    };
    return out;
}

fn bytes(ptr: ?[*]const u8, len: usize) []const u8 {
    const p = ptr orelse return "";
    return p[0..len];
}

/// `std.mem.Allocator` over the host's `alloc` callback. The context is the
/// `c.flexilib_request`, whose `alloc` and `arena` fields it uses.
const arena_vtable: std.mem.Allocator.VTable = .{
    .alloc = arenaAlloc,
    .resize = arenaResize,
    .remap = arenaRemap,
    .free = std.mem.Allocator.noFree,
};

fn arenaAlloc(ctx: *anyopaque, len: usize, alignment: std.mem.Alignment, ret_addr: usize) ?[*]u8 {
    _ = ret_addr;
    const raw: *const c.flexilib_request = @ptrCast(@alignCast(ctx));
    const alloc = raw.alloc orelse return null;
    return @ptrCast(alloc(raw.arena, len, alignment.toByteUnits()));
}

/// The arena cannot grow a block in place: only shrinking succeeds.
fn arenaResize(ctx: *anyopaque, memory: []u8, alignment: std.mem.Alignment, new_len: usize, ret_addr: usize) bool {
    _ = .{ ctx, alignment, ret_addr };
    return new_len <= memory.len;
}

fn arenaRemap(ctx: *anyopaque, memory: []u8, alignment: std.mem.Alignment, new_len: usize, ret_addr: usize) ?[*]u8 {
    return if (arenaResize(ctx, memory, alignment, new_len, ret_addr)) memory.ptr else null;
}

// Tests: `zig test sdk/zig/flexilib.zig` (run by crates/flexilib/tests/zig_libraries.rs).

const testing = std.testing;

/// A stand-in for the host: `alloc` from a fixed buffer, or nothing at all
/// once `exhausted` is set.
const FakeHost = struct {
    var buffer: [16 * 1024]u8 = undefined;
    var fba: std.heap.FixedBufferAllocator = .init(&buffer);
    var exhausted = false;

    fn alloc(arena: ?*anyopaque, size: usize, alignment: usize) callconv(.c) ?*anyopaque {
        _ = arena;
        if (exhausted) return null;
        return fba.allocator().rawAlloc(size, .fromByteUnits(alignment), 0);
    }

    fn request(method: []const u8, target: []const u8, headers: []const c.flexilib_header, content: []const u8) c.flexilib_request {
        fba.reset();
        exhausted = false;
        return .{
            .target = target.ptr,
            .target_len = target.len,
            .method = method.ptr,
            .method_len = method.len,
            .content = content.ptr,
            .content_len = content.len,
            .headers = headers.ptr,
            .headers_len = headers.len,
            .abi_version = abi_version,
            .alloc = alloc,
            .arena = null,
        };
    }
};

fn testHeader(name: []const u8, value: []const u8) c.flexilib_header {
    return .{ .name_ptr = name.ptr, .name_len = name.len, .value_ptr = value.ptr, .value_len = value.len };
}

fn responseBody(res: *const c.flexilib_response) []const u8 {
    return bytes(res.ptr, res.len);
}

test "request view: method, target, path, query, headers, body" {
    const headers = [_]c.flexilib_header{ testHeader("host", "example"), testHeader("x-a", "1"), testHeader("x-a", "2") };
    const raw = FakeHost.request("POST", "/a/b?c=d?e", &headers, "payload");
    const req: Request = .init(&raw);
    try testing.expectEqualStrings("POST", req.method());
    try testing.expectEqualStrings("/a/b?c=d?e", req.target());
    try testing.expectEqualStrings("/a/b", req.path());
    try testing.expectEqualStrings("c=d?e", req.query().?);
    try testing.expectEqualStrings("1", req.header("X-A").?);
    try testing.expect(req.header("x-b") == null);
    try testing.expect(req.hasHeader("HOST"));
    try testing.expectEqual(@as(usize, 3), req.headerCount());
    try testing.expectEqualStrings("payload", req.body());

    var it = req.headers();
    var n: usize = 0;
    while (it.next()) |_| n += 1;
    try testing.expectEqual(@as(usize, 3), n);

    const bare = FakeHost.request("GET", "/plain", &.{}, "");
    const plain: Request = .init(&bare);
    try testing.expectEqualStrings("/plain", plain.path());
    try testing.expect(plain.query() == null);
    try testing.expectEqualStrings("", plain.body());
}

test "arena allocator: aligned blocks, shrink in place, no growth in place" {
    const raw = FakeHost.request("GET", "/", &.{}, "");
    const req: Request = .init(&raw);
    const block = try req.arena.alignedAlloc(u8, .@"64", 10);
    try testing.expect(@intFromPtr(block.ptr) % 64 == 0);
    try testing.expect(req.arena.resize(block, 5));
    try testing.expect(!req.arena.resize(block[0..5], 1000));
    req.arena.free(block[0..5]);
}

fn greet(req: *const Request, res: *Response) !void {
    try res.print("hello {s}", .{req.path()});
    try res.prepend(">");
    try res.addHeader("X-Test", "yes");
    try res.setReason("Fine");
    res.setStatus(201);
}

fn fail(req: *const Request, res: *Response) !void {
    _ = req;
    try res.write("partial");
    return error.Broken;
}

fn failWithStatus(req: *const Request, res: *Response) !void {
    _ = req;
    res.setStatus(503);
    return error.Broken;
}

test "dispatch builds the C response" {
    _ = init(abi_version);
    const raw = FakeHost.request("GET", "/x?y", &.{}, "");
    const res = dispatch(greet, &raw).?;
    try testing.expectEqualStrings(">hello /x", responseBody(res));
    try testing.expectEqual(@as(usize, 201), res.status);
    try testing.expectEqualStrings("Fine", bytes(res.reason_ptr, res.reason_len));
    try testing.expectEqual(@as(usize, 1), res.headers_len);
    const h = res.headers.?[0];
    try testing.expectEqualStrings("X-Test", bytes(h.name_ptr, h.name_len));
    try testing.expectEqualStrings("yes", bytes(h.value_ptr, h.value_len));
}

test "a handler error becomes 500 unless an error status was set" {
    _ = init(abi_version);
    var raw = FakeHost.request("GET", "/", &.{}, "");
    const failed = dispatch(fail, &raw).?;
    try testing.expectEqual(@as(usize, 500), failed.status);
    try testing.expectEqualStrings("partial", responseBody(failed));
    raw = FakeHost.request("GET", "/", &.{}, "");
    try testing.expectEqual(@as(usize, 503), dispatch(failWithStatus, &raw).?.status);
}

test "no response without an ABI 1 host or without memory" {
    var raw = FakeHost.request("GET", "/", &.{}, "");
    try testing.expectEqual(@as(c_int, 1), init(0));
    try testing.expect(dispatch(greet, &raw) == null);
    try testing.expectEqual(@as(c_int, 0), init(abi_version));
    FakeHost.exhausted = true;
    try testing.expect(dispatch(greet, &raw) == null);
    raw.alloc = null;
    try testing.expect(dispatch(greet, &raw) == null);
}

// ---- ABI 2 ----

/// A stand-in for the host's ABI-2 callbacks, recording what they get.
const FakeCalls = struct {
    var completed: usize = 0;
    var status: usize = 0;
    var flags: usize = 0;
    var header_count: usize = 0;
    var body_buffer: [1024]u8 = undefined;
    var body: []const u8 = "";
    var stream_buffer: [1024]u8 = undefined;
    var stream_len: usize = 0;
    var nonblocking_writes: usize = 0;
    var write_result: c_int = c.FLEXILIB_OK;
    var writable_result: c_int = c.FLEXILIB_OK;
    var ends: usize = 0;
    var end_ok: c_int = -1;

    fn reset() void {
        completed = 0;
        status = 0;
        flags = 0;
        header_count = 0;
        body = "";
        stream_len = 0;
        nonblocking_writes = 0;
        write_result = c.FLEXILIB_OK;
        writable_result = c.FLEXILIB_OK;
        ends = 0;
        end_ok = -1;
    }

    fn streamed() []const u8 {
        return stream_buffer[0..stream_len];
    }

    fn complete(call: u64, response: ?*const c.flexilib_response_v2) callconv(.c) c_int {
        std.debug.assert(call == 7);
        const r = response orelse return c.FLEXILIB_INVALID;
        completed += 1;
        status = r.base.status;
        flags = r.flags;
        header_count = r.base.headers_len;
        // Copied during the call, as the host does.
        const b = bytes(r.base.ptr, r.base.len);
        @memcpy(body_buffer[0..b.len], b);
        body = body_buffer[0..b.len];
        return c.FLEXILIB_OK;
    }

    fn streamWrite(call: u64, data: ?[*]const u8, len: usize, write_flags: c_int) callconv(.c) c_int {
        std.debug.assert(call == 7);
        if (write_result != c.FLEXILIB_OK) return write_result;
        if (write_flags & c.FLEXILIB_WRITE_NONBLOCK != 0) nonblocking_writes += 1;
        @memcpy(stream_buffer[stream_len..][0..len], data.?[0..len]);
        stream_len += len;
        return c.FLEXILIB_OK;
    }

    fn onWritable(call: u64, callback: c.flexilib_writable_fn, data: ?*anyopaque) callconv(.c) c_int {
        std.debug.assert(call == 7);
        if (writable_result != c.FLEXILIB_OK) return writable_result;
        callback(data); // there is room at once
        return c.FLEXILIB_OK;
    }

    fn streamEnd(call: u64, ok: c_int) callconv(.c) c_int {
        std.debug.assert(call == 7);
        ends += 1;
        end_ok = ok;
        return c.FLEXILIB_OK;
    }

    const host: c.flexilib_host = .{
        .abi_version = abi_version,
        .complete = complete,
        .stream_write = streamWrite,
        .stream_on_writable = onWritable,
        .stream_end = streamEnd,
    };

    /// An ABI-2 request for `instance`, call 7.
    fn request(target: []const u8, headers: []const c.flexilib_header, instance: ?*anyopaque) c.flexilib_request {
        reset();
        var raw = FakeHost.request("GET", target, headers, "");
        raw.instance = instance;
        raw.call = 7;
        raw.host = &host;
        return raw;
    }
};

/// A stand-in for the host's side of `flexilib_instance_new`.
const FakeConfig = struct {
    var deps_buffer: [512]u8 = undefined;
    var deps_len: usize = 0;
    var failure_buffer: [512]u8 = undefined;
    var failure: []const u8 = "";

    fn dependsOn(context: ?*anyopaque, path: ?[*]const u8, len: usize) callconv(.c) void {
        std.debug.assert(context == @as(?*anyopaque, @ptrCast(&deps_len)));
        @memcpy(deps_buffer[deps_len..][0..len], path.?[0..len]);
        deps_buffer[deps_len + len] = '\n';
        deps_len += len + 1;
    }

    fn failed(context: ?*anyopaque, message: ?[*]const u8, len: usize) callconv(.c) void {
        std.debug.assert(context == @as(?*anyopaque, @ptrCast(&deps_len)));
        @memcpy(failure_buffer[0..len], message.?[0..len]);
        failure = failure_buffer[0..len];
    }

    fn deps() []const u8 {
        return deps_buffer[0..deps_len];
    }

    fn config(dir: []const u8, options: []const c.flexilib_option) c.flexilib_instance_config {
        deps_len = 0;
        failure = "";
        const route = "/w";
        return .{
            .abi_version = abi_version,
            .route = route.ptr,
            .route_len = route.len,
            .config_dir = dir.ptr,
            .config_dir_len = dir.len,
            .options = options.ptr,
            .options_len = options.len,
            .host_context = @ptrCast(&deps_len),
            .depends_on = dependsOn,
            .fail = failed,
        };
    }
};

fn testOption(key: []const u8, value: []const u8) c.flexilib_option {
    return .{ .key = key.ptr, .key_len = key.len, .value = value.ptr, .value_len = value.len };
}

/// An instance type as a library would write one.
const TestPage = struct {
    gpa: std.mem.Allocator,
    greeting: []u8,

    var deinits: usize = 0;
    var thread: ?std.Thread = null;

    pub fn init(config: *const InstanceConfig) !TestPage {
        if (config.option("broken")) |why| return config.fail("broken: {s}", .{why});
        if (config.option("error") != null) return error.Requested;
        const file = config.option("greeting") orelse "greeting.txt";
        return .{ .gpa = config.gpa, .greeting = try config.readFile(file) };
    }

    pub fn deinit(page: *TestPage) void {
        page.gpa.free(page.greeting);
        deinits += 1;
    }

    pub fn handle(page: *const TestPage, req: *const Request, res: *Response, call: Call) !void {
        const path = req.path();
        if (std.mem.eql(u8, path, "/later")) {
            const responder = try call.respondLater();
            // Joined by the test after dispatch returned.
            thread = try std.Thread.spawn(.{}, completeLater, .{ responder, page.greeting });
            return;
        }
        if (std.mem.eql(u8, path, "/later-then-fail")) {
            var responder = try call.respondLater();
            responder.abandon();
            return error.AfterAnswering;
        }
        if (std.mem.eql(u8, path, "/stream")) {
            res.setStatus(201);
            try res.addHeader("content-type", "text/plain");
            var writer = try call.stream(res);
            defer writer.abort(); // a no-op after finish
            try res.write("not part of a streamed response");
            try writer.write("one ");
            try writer.print("{d} ", .{2});
            try writer.tryWrite("three");
            writer.finish();
            return;
        }
        try res.write(page.greeting);
        if (req.hasHeader("x-as-given")) res.setAsGiven();
        if (req.hasHeader("x-fail")) return error.Failed;
    }

    fn completeLater(responder_: Responder, greeting: []const u8) void {
        var responder = responder_;
        defer responder.abandon();
        var res = responder.response();
        res.print("later: {s}", .{greeting}) catch return;
        res.addHeader("x-answered", "later") catch return;
        responder.complete(&res);
    }
};

test "instance libraries refuse hosts older than ABI 2" {
    try testing.expect(initInstance(0) != 0);
    try testing.expect(initInstance(1) != 0);
    try testing.expectEqual(@as(c_int, 0), initInstance(2));
}

test "instance config: route, directory, options, resolve" {
    const options = [_]c.flexilib_option{ testOption("a", "1"), testOption("b", "two"), testOption("a", "3") };
    const raw = FakeConfig.config("/srv/conf", &options);
    var failure: InstanceConfig.Failure = .{};
    const config: InstanceConfig = .{ .raw = &raw, .gpa = testing.allocator, .io = testing.io, .failure = &failure };
    try testing.expectEqualStrings("/w", config.route());
    try testing.expectEqualStrings("/srv/conf", config.configDir());
    try testing.expectEqualStrings("1", config.option("a").?);
    try testing.expectEqualStrings("two", config.option("b").?);
    try testing.expect(config.option("c") == null);
    var it = config.options();
    var keys: [3][]const u8 = undefined;
    var n: usize = 0;
    while (it.next()) |o| : (n += 1) keys[n] = o.key;
    try testing.expectEqual(@as(usize, 3), n);
    try testing.expectEqualStrings("a", keys[2]);

    const relative = try config.resolve(testing.allocator, "pages/a.txt");
    defer testing.allocator.free(relative);
    try testing.expectEqualStrings("/srv/conf/pages/a.txt", relative);
    const absolute = try config.resolve(testing.allocator, "/etc/b.txt");
    defer testing.allocator.free(absolute);
    try testing.expectEqualStrings("/etc/b.txt", absolute);

    config.dependsOn("x.txt");
    try testing.expectEqualStrings("x.txt\n", FakeConfig.deps());
    try testing.expectEqual(error.InstanceFailed, config.fail("bad {s}", .{"thing"}));
    try testing.expectEqualStrings("bad thing", failure.message());
}

test "newInstance reads and names files, reports failures, freeInstance calls deinit" {
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    try tmp.dir.writeFile(testing.io, .{ .sub_path = "greeting.txt", .data = "hi there" });
    var dir_buffer: [4096]u8 = undefined;
    const dir = dir_buffer[0..try tmp.dir.realPath(testing.io, &dir_buffer)];

    // Built: the file is read from the config directory and named.
    var raw = FakeConfig.config(dir, &.{});
    const page = newInstance(TestPage, &raw, testing.allocator, testing.io).?;
    try testing.expectEqualStrings("hi there", page.greeting);
    try testing.expectEqualStrings("greeting.txt\n", FakeConfig.deps());
    try testing.expectEqualStrings("", FakeConfig.failure);
    TestPage.deinits = 0;
    freeInstance(TestPage, page, testing.allocator); // testing.allocator checks for leaks
    try testing.expectEqual(@as(usize, 1), TestPage.deinits);

    // A missing file: named all the same (creating it rebuilds), error name.
    const missing = [_]c.flexilib_option{testOption("greeting", "missing.txt")};
    raw = FakeConfig.config(dir, &missing);
    try testing.expect(newInstance(TestPage, &raw, testing.allocator, testing.io) == null);
    try testing.expectEqualStrings("missing.txt\n", FakeConfig.deps());
    try testing.expectEqualStrings("FileNotFound", FakeConfig.failure);

    // config.fail's message, else the error name.
    const broken = [_]c.flexilib_option{testOption("broken", "on purpose")};
    raw = FakeConfig.config(dir, &broken);
    try testing.expect(newInstance(TestPage, &raw, testing.allocator, testing.io) == null);
    try testing.expectEqualStrings("broken: on purpose", FakeConfig.failure);
    const failing = [_]c.flexilib_option{testOption("error", "")};
    raw = FakeConfig.config(dir, &failing);
    try testing.expect(newInstance(TestPage, &raw, testing.allocator, testing.io) == null);
    try testing.expectEqualStrings("Requested", FakeConfig.failure);
    try testing.expectEqual(@as(usize, 1), TestPage.deinits);
}

fn testPage(greeting: []const u8) TestPage {
    return .{ .gpa = testing.allocator, .greeting = @constCast(greeting) };
}

fn asV2(answer: ?*anyopaque) *const c.flexilib_response_v2 {
    return @ptrCast(@alignCast(answer.?));
}

test "dispatchInstance answers now with a v2 response; an error is a 500" {
    _ = initInstance(abi_version);
    var page = testPage("hello");
    var raw = FakeCalls.request("/", &.{}, &page);
    const plain = asV2(dispatchInstance(TestPage, &raw));
    try testing.expectEqualStrings("hello", responseBody(&plain.base));
    try testing.expectEqual(@as(usize, 200), plain.base.status);
    try testing.expectEqual(@as(usize, 0), plain.flags);

    const as_given = [_]c.flexilib_header{testHeader("x-as-given", "1")};
    raw = FakeCalls.request("/", &as_given, &page);
    try testing.expectEqual(c.FLEXILIB_RESPONSE_AS_GIVEN, asV2(dispatchInstance(TestPage, &raw)).flags);

    const fail_header = [_]c.flexilib_header{testHeader("x-fail", "1")};
    raw = FakeCalls.request("/", &fail_header, &page);
    const failed = asV2(dispatchInstance(TestPage, &raw));
    try testing.expectEqual(@as(usize, 500), failed.base.status);
    try testing.expectEqualStrings("hello", responseBody(&failed.base));

    // No instance, no host, or an older host: NULL (the host answers 500).
    raw = FakeCalls.request("/", &.{}, null);
    try testing.expect(dispatchInstance(TestPage, &raw) == null);
    raw = FakeCalls.request("/", &.{}, &page);
    raw.host = null;
    try testing.expect(dispatchInstance(TestPage, &raw) == null);
    raw = FakeCalls.request("/", &.{}, &page);
    _ = initInstance(1);
    try testing.expect(dispatchInstance(TestPage, &raw) == null);
    _ = initInstance(abi_version);
}

test "respondLater: PENDING now, completed once from another thread" {
    _ = initInstance(abi_version);
    var page = testPage("hi");
    var raw = FakeCalls.request("/later", &.{}, &page);
    try testing.expectEqual(c.FLEXILIB_PENDING, dispatchInstance(TestPage, &raw).?);
    TestPage.thread.?.join();
    TestPage.thread = null;
    try testing.expectEqual(@as(usize, 1), FakeCalls.completed);
    try testing.expectEqualStrings("later: hi", FakeCalls.body);
    try testing.expectEqual(@as(usize, 200), FakeCalls.status);
    try testing.expectEqual(@as(usize, 1), FakeCalls.header_count);

    // An error after answering: still PENDING, the answer stands.
    raw = FakeCalls.request("/later-then-fail", &.{}, &page);
    try testing.expectEqual(c.FLEXILIB_PENDING, dispatchInstance(TestPage, &raw).?);
    try testing.expectEqual(@as(usize, 1), FakeCalls.completed);
    try testing.expectEqual(@as(usize, 500), FakeCalls.status);
}

test "a Responder completes once; abandon answers 500 only if nothing was sent" {
    var raw = FakeCalls.request("/", &.{}, null);
    const req: Request = .init(&raw);
    var responder: Responder = .{ .id = 7, .host = &FakeCalls.host, .request = req };
    var res = responder.response();
    try res.write("first");
    res.setAsGiven();
    responder.complete(&res);
    try testing.expectEqual(c.FLEXILIB_RESPONSE_AS_GIVEN, FakeCalls.flags);
    try res.setBody("second");
    responder.complete(&res);
    responder.abandon();
    try testing.expectEqual(@as(usize, 1), FakeCalls.completed);
    try testing.expectEqualStrings("first", FakeCalls.body);

    var unused: Responder = .{ .id = 7, .host = &FakeCalls.host, .request = req };
    unused.abandon();
    try testing.expectEqual(@as(usize, 2), FakeCalls.completed);
    try testing.expectEqual(@as(usize, 500), FakeCalls.status);

    // Responder.stream: the head with the stream flag and no body.
    var streaming: Responder = .{ .id = 7, .host = &FakeCalls.host, .request = req };
    var writer = streaming.stream(&res);
    try testing.expectEqual(c.FLEXILIB_RESPONSE_STREAM | c.FLEXILIB_RESPONSE_AS_GIVEN, FakeCalls.flags);
    try testing.expectEqualStrings("", FakeCalls.body);
    try writer.write("x");
    writer.finish();
    try testing.expectEqualStrings("x", FakeCalls.streamed());
}

test "stream: the head goes with the stream flag, the body through the writer" {
    _ = initInstance(abi_version);
    var page = testPage("hi");
    var raw = FakeCalls.request("/stream", &.{}, &page);
    const head = asV2(dispatchInstance(TestPage, &raw));
    try testing.expectEqual(c.FLEXILIB_RESPONSE_STREAM, head.flags);
    try testing.expectEqual(@as(usize, 201), head.base.status);
    try testing.expectEqual(@as(usize, 1), head.base.headers_len);
    try testing.expectEqual(@as(usize, 0), head.base.len);
    try testing.expectEqualStrings("one 2 three", FakeCalls.streamed());
    try testing.expectEqual(@as(usize, 1), FakeCalls.nonblocking_writes);
    // finish, then the deferred abort: one end, a complete body.
    try testing.expectEqual(@as(usize, 1), FakeCalls.ends);
    try testing.expectEqual(@as(c_int, 1), FakeCalls.end_ok);
}

test "a Call is answered one way only" {
    var raw = FakeCalls.request("/", &.{}, null);
    var answer: Answer = .now;
    const call: Call = .{ .id = 7, .host = &FakeCalls.host, .request = .init(&raw), .answer = &answer };
    _ = try call.respondLater();
    try testing.expectError(error.AlreadyAnswered, call.respondLater());
    var head: Response = .init(call.request.arena);
    try testing.expectError(error.AlreadyAnswered, call.stream(&head));
    try testing.expect(answer == .later);
}

const Counter = struct {
    count: usize = 0,
    fn bump(counter: *Counter) void {
        counter.count += 1;
    }
};

test "BodyWriter: Full and Closed, onWritable, abort, nothing after the end" {
    FakeCalls.reset();
    var writer: BodyWriter = .{ .id = 7, .host = &FakeCalls.host };
    FakeCalls.write_result = c.FLEXILIB_FULL;
    try testing.expectError(error.Full, writer.tryWrite("a"));
    FakeCalls.write_result = c.FLEXILIB_CLOSED;
    try testing.expectError(error.Closed, writer.tryWrite("a"));
    try testing.expectError(error.Closed, writer.write("a"));
    try testing.expectError(error.Closed, writer.print("{d}", .{1}));
    FakeCalls.write_result = c.FLEXILIB_OK;

    var counter: Counter = .{};
    writer.onWritable(&counter, Counter.bump);
    try testing.expectEqual(@as(usize, 1), counter.count);
    FakeCalls.writable_result = c.FLEXILIB_INVALID; // refused: called at once
    writer.onWritable(&counter, Counter.bump);
    try testing.expectEqual(@as(usize, 2), counter.count);
    FakeCalls.writable_result = c.FLEXILIB_OK;

    writer.abort();
    writer.abort();
    writer.finish();
    try testing.expectEqual(@as(usize, 1), FakeCalls.ends);
    try testing.expectEqual(@as(c_int, 0), FakeCalls.end_ok);
    try testing.expectError(error.Closed, writer.write("late"));
    writer.onWritable(&counter, Counter.bump);
    try testing.expectEqual(@as(usize, 3), counter.count);
    try testing.expectEqualStrings("", FakeCalls.streamed());
}

test "BodyWriter.writer: a std.Io.Writer over the body" {
    FakeCalls.reset();
    var body: BodyWriter = .{ .id = 7, .host = &FakeCalls.host };
    var buffer: [4]u8 = undefined;
    var adapter = body.writer(&buffer);
    const w = &adapter.interface;
    try w.print("{s}-{d}|", .{ "longer than the buffer", 42 });
    try w.splatByteAll('x', 6);
    try w.flush();
    try testing.expectEqualStrings("longer than the buffer-42|xxxxxx", FakeCalls.streamed());
    FakeCalls.write_result = c.FLEXILIB_CLOSED;
    try testing.expectError(error.WriteFailed, w.writeAll("more than four bytes"));
    body.finish();
}
