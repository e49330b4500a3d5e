//! An ABI-2 FlexiLib library written with the Zig SDK
//! (sdk/zig/flexilib.zig): one instance per route, configured by the
//! route's options, answering later from its own threads and streaming.
//!
//! ```ini
//! /zig = libzig_instance.so template=examples/zig-instance/page.txt name=FlexiLib
//! ```
//!
//! * `template=FILE` (required): the page; `{name}` and `{path}` in it are
//!   filled in. The file is watched: edit it and the next requests get a
//!   new instance built from it. A template without `{path}` is refused
//!   (the build fails, the message is logged and the current instance keeps
//!   serving).
//! * `name=TEXT`: what `{name}` becomes (default `world`).
//!
//! Paths under the route:
//! * `…/later?ms=M`: the page, answered `M` ms later (default 100) from a
//!   thread of the library's own; the header `x-answered-on` says whether
//!   that was another thread than the handler's;
//! * `…/count?n=N`: `N` lines (default 5) streamed, 50 ms apart;
//! * `…/big?kb=N`: `N` KiB (default 1024) of `z` streamed with non-blocking
//!   writes, waiting for room with `onWritable` when the host's buffer is
//!   full; it logs how often it waited;
//! * `…/options`: the route's options, `key=value` a line, in config order;
//! * anything else: the page.
const std = @import("std");
const flexilib = @import("flexilib");

const log = std.log.scoped(.zig_instance);

comptime {
    flexilib.exportInstance(Page);
}

/// The route's instance: its template, name and options.
const Page = struct {
    gpa: std.mem.Allocator,
    template: []u8,
    name: []u8,
    options: []u8,

    pub fn init(config: *const flexilib.InstanceConfig) !Page {
        const gpa = config.gpa;
        const file = config.option("template") orelse
            return config.fail("the route needs template=FILE", .{});
        // Read and named as a dependency: editing it builds a new instance.
        const template = config.readFile(file) catch |err|
            return config.fail("cannot read {s}: {t}", .{ file, err });
        errdefer gpa.free(template);
        if (std.mem.indexOf(u8, template, "{path}") == null)
            return config.fail("{s} has no {{path}} placeholder", .{file});
        const name = try gpa.dupe(u8, config.option("name") orelse "world");
        errdefer gpa.free(name);

        // The options are the host's during init only: keep a copy.
        var options: std.ArrayList(u8) = .empty;
        errdefer options.deinit(gpa);
        var it = config.options();
        while (it.next()) |o| try options.print(gpa, "{s}={s}\n", .{ o.key, o.value });
        return .{ .gpa = gpa, .template = template, .name = name, .options = try options.toOwnedSlice(gpa) };
    }

    pub fn deinit(page: *Page) void {
        page.gpa.free(page.template);
        page.gpa.free(page.name);
        page.gpa.free(page.options);
    }

    /// Runs on several handler threads at once; `Page` is never changed
    /// after `init`, so it needs no lock.
    pub fn handle(page: *const Page, req: *const flexilib.Request, res: *flexilib.Response, call: flexilib.Call) !void {
        const path = req.path();
        if (std.mem.endsWith(u8, path, "/later")) {
            var responder = try call.respondLater();
            errdefer responder.abandon(); // a 500 if the thread cannot start
            // The request's arena is ours until the thread starts.
            const body = try page.render(req.arena, path);
            const thread = try std.Thread.spawn(.{}, answerLater, .{
                responder, body, number(req, "ms", 100), std.Thread.getCurrentId(),
            });
            thread.detach();
            return;
        }
        if (std.mem.endsWith(u8, path, "/count") or std.mem.endsWith(u8, path, "/big")) {
            try res.addHeader("content-type", "text/plain; charset=utf-8");
            var writer = try call.stream(res);
            errdefer writer.abort(); // cut the connection if the thread cannot start
            const thread = if (std.mem.endsWith(u8, path, "/count"))
                try std.Thread.spawn(.{}, countLines, .{ writer, number(req, "n", 5) })
            else
                try std.Thread.spawn(.{}, sendBig, .{ writer, number(req, "kb", 1024) });
            thread.detach();
            return;
        }
        if (std.mem.endsWith(u8, path, "/options")) return res.write(page.options);
        try res.write(try page.render(req.arena, path));
    }

    /// The template with `{name}` and `{path}` filled in, in `arena`.
    fn render(page: *const Page, arena: std.mem.Allocator, path: []const u8) ![]u8 {
        const named = try std.mem.replaceOwned(u8, arena, page.template, "{name}", page.name);
        return std.mem.replaceOwned(u8, arena, named, "{path}", path);
    }
};

/// Completes a request from a thread of its own, `ms` milliseconds later.
fn answerLater(responder_: flexilib.Responder, body: []const u8, ms: u64, handler_thread: std.Thread.Id) void {
    var responder = responder_;
    defer responder.abandon(); // a 500 unless completed below
    sleepMs(ms);
    // In the request's arena, which is this thread's until `complete`.
    var res = responder.response();
    res.write(body) catch return;
    res.addHeader("x-answered", "later") catch return;
    const elsewhere = std.Thread.getCurrentId() != handler_thread;
    res.addHeader("x-answered-on", if (elsewhere) "another thread" else "the handler's thread") catch return;
    responder.complete(&res);
}

/// `lines` lines, 50 ms apart: each reaches the client as it is written.
fn countLines(writer_: flexilib.BodyWriter, lines: u64) void {
    var writer = writer_;
    defer writer.abort(); // unless finished: the client left, or a write failed
    for (1..lines + 1) |i| {
        if (i > 1) sleepMs(50);
        writer.print("line {d}\n", .{i}) catch return; // the client left
    }
    writer.finish();
}

/// Wakes the producer of `/big` when the host has room again.
const Room = struct {
    event: std.Io.Event = .unset,

    fn ready(room: *Room) void {
        room.event.set(flexilib.io());
    }
};

/// `kb` KiB as fast as the client takes them, with non-blocking writes.
fn sendBig(writer_: flexilib.BodyWriter, kb: u64) void {
    var writer = writer_;
    defer writer.abort();
    const chunk: [1024]u8 = @splat('z');
    var room: Room = .{};
    var sent: u64 = 0;
    var waits: u64 = 0;
    while (sent < kb) {
        writer.tryWrite(&chunk) catch |err| switch (err) {
            error.Full => {
                // Called back once there is room (or the client left).
                waits += 1;
                room.event.reset();
                writer.onWritable(&room, Room.ready);
                room.event.waitUncancelable(flexilib.io());
                continue;
            },
            error.Closed => {
                log.info("/big: the client left after {d} KiB", .{sent});
                return;
            },
        };
        sent += 1;
    }
    writer.finish();
    log.info("/big: {d} KiB sent, waited for room {d} times", .{ sent, waits });
}

/// The query parameter `key` as a number, or `default`.
fn number(req: *const flexilib.Request, key: []const u8, default: u64) u64 {
    var pairs = std.mem.splitScalar(u8, req.query() orelse return default, '&');
    while (pairs.next()) |pair| {
        const eq = std.mem.indexOfScalar(u8, pair, '=') orelse continue;
        if (std.mem.eql(u8, pair[0..eq], key)) return std.fmt.parseInt(u64, pair[eq + 1 ..], 10) catch default;
    }
    return default;
}

fn sleepMs(ms: u64) void {
    std.Io.sleep(flexilib.io(), .fromMilliseconds(@intCast(ms)), .awake) catch {};
}
