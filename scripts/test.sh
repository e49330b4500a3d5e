#!/usr/bin/env bash
# Every check and test: formatting, lints, unit tests and end-to-end tests
# against the real binary with real Rust and C libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests load the example cdylib from the build directory.
cargo build --workspace
cargo test --workspace
