#!/usr/bin/env bash
# Every check and test: formatting, lints, unit tests, end-to-end tests
# against the real binary with real Rust and C libraries, and a smoke run of
# the benchmarks (needs wrk and nginx: apt-get install -y wrk nginx-light).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests load the example cdylib from the build directory.
cargo build --workspace
# The Zig library tests build with Zig 0.13 and 0.17.1 from PyPI (target/tools).
scripts/install-zig.sh
cargo test --workspace
# Benchmarks: check that they run (a few seconds each); they assert no speed.
python3 bench/bench.py --smoke
python3 bench/lifecycle.py --smoke --no-build
