//! A handler library in the style of the original FlexiLib's Zig libraries,
//! for Zig 0.13 (the original's compiler): it exports `zigInit`, keeps the
//! `std.mem.Allocator` it is given, and builds its whole response with it.
//! It knows only the original's structs, not the fields FlexiLib-rs
//! appended. Built and driven by tests/zig_libraries.rs.
//!
//! * `METHOD TARGET` → body `zig 0.13: METHOD TARGET headers=N body=B`
//!   (B = request body length), header `X-Zig: 0.13`;
//! * `x-status: CODE` → that status;
//! * `x-grow: N` → the body is N bytes `a`..`z` repeated, appended one at a
//!   time (the list grows by allocate-copy-free through the allocator);
//! * `x-echo` → the body is the request body;
//! * `x-fail` → a Zig error, which `handle_request` turns into NULL (500).
//!
//! Every request also checks the allocator itself: 64- and 4096-byte
//! aligned blocks, a shrink in place that must succeed, a growth in place
//! that must be refused, and a free. A failed check is an error (500).
const std = @import("std");

const Header = extern struct {
    name_ptr: [*]u8,
    name_len: usize,
    value_ptr: [*]u8,
    value_len: usize,
};

const Request = extern struct {
    target: [*]const u8,
    target_len: usize,
    method: [*:0]u8,
    method_len: usize,
    content: [*]u8,
    content_len: usize,
    headers: [*]Header,
    headers_len: usize,
};

const Response = extern struct {
    ptr: [*]const u8,
    len: usize,
    headers: [*]Header,
    headers_len: usize,
    status: usize,
    reason_ptr: ?[*]u8,
    reason_len: usize,
};

// The server builds the allocator value by hand: this is the layout it
// assumes. Compiling this file checks it against the compiler's.
comptime {
    std.debug.assert(@sizeOf(std.mem.Allocator) == 16);
    std.debug.assert(@offsetOf(std.mem.Allocator, "ptr") == 0);
    std.debug.assert(@offsetOf(std.mem.Allocator, "vtable") == 8);
    std.debug.assert(@offsetOf(std.mem.Allocator.VTable, "alloc") == 0);
    std.debug.assert(@offsetOf(std.mem.Allocator.VTable, "resize") == 8);
    std.debug.assert(@offsetOf(std.mem.Allocator.VTable, "free") == 16);
}

/// Set by `zigInit`, taken by the next `handle_request` on this thread: a
/// request that was not preceded by its own `zigInit` fails.
threadlocal var request_allocator: ?*const std.mem.Allocator = null;

export fn zigInit(allocator: *anyopaque) callconv(.C) void {
    request_allocator = @ptrCast(@alignCast(allocator));
}

export fn handle_request(req: *Request) callconv(.C) ?*Response {
    const allocator = request_allocator orelse return null;
    request_allocator = null;
    return respond(allocator.*, req) catch |err| {
        std.log.err("original_style: {s}", .{@errorName(err)});
        return null;
    };
}

fn header(req: *const Request, name: []const u8) ?[]const u8 {
    for (req.headers[0..req.headers_len]) |h| {
        if (std.ascii.eqlIgnoreCase(h.name_ptr[0..h.name_len], name))
            return h.value_ptr[0..h.value_len];
    }
    return null;
}

fn checkAllocator(allocator: std.mem.Allocator) !void {
    const wide = try allocator.alignedAlloc(u8, 64, 3);
    if (@intFromPtr(wide.ptr) % 64 != 0) return error.Misaligned64;
    const page = try allocator.alignedAlloc(u8, 4096, 1);
    if (@intFromPtr(page.ptr) % 4096 != 0) return error.Misaligned4096;
    const block = try allocator.alloc(u8, 100);
    @memset(block, 7);
    if (!allocator.resize(block, 40)) return error.ShrinkRefused;
    if (allocator.resize(block[0..40], 1 << 20)) return error.GrowthInPlaceAccepted;
    allocator.free(block[0..40]);
    allocator.free(page);
    allocator.free(wide);
}

fn respond(allocator: std.mem.Allocator, req: *Request) !*Response {
    try checkAllocator(allocator);
    if (header(req, "x-fail") != null) return error.FailRequested;

    var body = std.ArrayList(u8).init(allocator);
    if (header(req, "x-grow")) |value| {
        const n = try std.fmt.parseInt(usize, value, 10);
        for (0..n) |i| try body.append(@as(u8, 'a') + @as(u8, @intCast(i % 26)));
    } else if (header(req, "x-echo") != null) {
        try body.appendSlice(req.content[0..req.content_len]);
    } else {
        try body.writer().print("zig 0.13: {s} {s} headers={d} body={d}", .{
            req.method[0..req.method_len :0],
            req.target[0..req.target_len],
            req.headers_len,
            req.content_len,
        });
    }
    const text = try body.toOwnedSlice();

    const headers = try allocator.alloc(Header, 1);
    const value = try allocator.dupe(u8, "0.13");
    headers[0] = .{
        .name_ptr = @constCast("X-Zig".ptr),
        .name_len = "X-Zig".len,
        .value_ptr = value.ptr,
        .value_len = value.len,
    };

    const res = try allocator.create(Response);
    res.* = .{
        .ptr = text.ptr,
        .len = text.len,
        .headers = headers.ptr,
        .headers_len = headers.len,
        .status = if (header(req, "x-status")) |v| try std.fmt.parseInt(usize, v, 10) else 0,
        .reason_ptr = null,
        .reason_len = 0,
    };
    return res;
}
