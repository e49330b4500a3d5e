//! `zig build` (Zig 0.17) builds zig-out/lib/libzig_instance.so; add
//! `--release=safe` for an optimized build with safety checks. The library
//! links libc: its threads (`std.Thread`) need it inside the server.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const flexilib = b.createModule(.{
        .root_source_file = b.path("../../sdk/zig/flexilib.zig"),
    });
    const lib = b.addLibrary(.{
        .name = "zig_instance",
        .linkage = .dynamic,
        .root_module = b.createModule(.{
            .root_source_file = b.path("instance.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
            .imports = &.{.{ .name = "flexilib", .module = flexilib }},
        }),
    });
    b.installArtifact(lib);
}
