//! FlexiLib SDK for Zig handler libraries (Zig 0.17; ABI version 1).
//!
//! Write a handler and export it:
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
//!
//! The SDK needs a FlexiLib-rs host (ABI ≥ 1): `flexilib_init` refuses an
//! older host, and requests are answered only after it succeeded.
//!
//! This is not the original FlexiLib's `zigInit` interface, whose allocator
//! has Zig 0.13's layout; nothing here depends on Zig's allocator ABI.
const std = @import("std");
const builtin = @import("builtin");

/// The ABI version this file describes (`FLEXILIB_ABI_VERSION`).
pub const abi_version: usize = 1;

/// The C structs of `include/flexilib.h`, field for field, with its names.
pub const c = struct {
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
};

// The sizes of the C structs on 64-bit Linux, as a check on the above.
comptime {
    std.debug.assert(@sizeOf(c.flexilib_header) == 32);
    std.debug.assert(@sizeOf(c.flexilib_request) == 88);
    std.debug.assert(@sizeOf(c.flexilib_response) == 56);
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

    /// The C response for the host, in the arena.
    pub fn toC(res: *const Response) !*c.flexilib_response {
        const out = try res.arena.create(c.flexilib_response);
        const reason = res.reason orelse "";
        out.* = .{
            .ptr = res.body.items.ptr,
            .len = res.body.items.len,
            .headers = res.headers.items.ptr,
            .headers_len = res.headers.items.len,
            .status = res.status,
            .reason_ptr = reason.ptr,
            .reason_len = reason.len,
        };
        return out;
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
    return if (version < abi_version) 1 else 0;
}

/// Runs `handler` on a raw request and returns the C response, or NULL
/// (the host answers 500) when the host is too old or memory ran out.
pub fn dispatch(comptime handler: Handler, raw: ?*const c.flexilib_request) ?*c.flexilib_response {
    if (host_abi_version.load(.acquire) < abi_version) return null;
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
