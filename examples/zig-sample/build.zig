//! `zig build` (Zig 0.17) builds zig-out/lib/libsample_zig.so; add
//! `--release=safe` for an optimized build with safety checks.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const flexilib = b.createModule(.{
        .root_source_file = b.path("../../sdk/zig/flexilib.zig"),
    });
    const lib = b.addLibrary(.{
        .name = "sample_zig",
        .linkage = .dynamic,
        .root_module = b.createModule(.{
            .root_source_file = b.path("sample.zig"),
            .target = target,
            .optimize = optimize,
            .imports = &.{.{ .name = "flexilib", .module = flexilib }},
        }),
    });
    b.installArtifact(lib);
}
