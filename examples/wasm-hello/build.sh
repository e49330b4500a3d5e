#!/usr/bin/env bash
# Builds the C guest of this example into a wasi:http component:
#
#   examples/wasm-hello/build.sh [OUT.wasm] [-DNAME=VALUE ...]
#
# (default target/wasm-hello/hello.wasm). Rust cannot target wasm32 on the
# machines this project is built on, so the guest is C: the builder
# (examples/wasm-hello/builder, a workspace binary) generates its C bindings
# with wit-bindgen-c, compiles it with Zig's C compiler for wasm32-wasi (Zig
# from PyPI, installed by scripts/install-zig.sh) and makes the component
# with wit-component and Wasmtime's preview-1 adapter.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

out="${1:-target/wasm-hello/hello.wasm}"
shift || true
tools="${FLEXILIB_TOOLS_DIR:-$root/target/tools}"
zig="${FLEXILIB_ZIG_0_17_1:-$tools/zig-0.17.1/bin/zig}"
[ -x "$zig" ] || scripts/install-zig.sh
cargo build --quiet -p wasm-hello-builder
builder="${CARGO_TARGET_DIR:-$root/target}/debug/wasm-hello-build"
mkdir -p "$(dirname "$out")"
"$builder" --zig "$zig" --out "$out" "$@" examples/wasm-hello/hello.c
echo "built $out"
