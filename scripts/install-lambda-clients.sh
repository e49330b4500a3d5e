#!/usr/bin/env bash
# Installs AWS's unmodified Lambda runtime clients that the Lambda tests run
# functions with, and builds the Rust example function:
#
#   target/lambda-venv/         Python venv with awslambdaric (PyPI)
#   target/lambda-rust/release/bootstrap
#                               examples/lambda-rust, built with lambda_http
#                               (crates.io) from its own Cargo.lock
#
# Safe to run again: it only does what is missing or out of date. The tests
# fail, naming this script, when something it makes is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/lambda-venv
if ! "$venv/bin/python3" -c 'import awslambdaric' >/dev/null 2>&1; then
    echo "install-lambda-clients: creating $venv with awslambdaric" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'awslambdaric>=3,<5'
fi

echo "install-lambda-clients: building examples/lambda-rust" >&2
cargo build --release --locked --quiet \
    --manifest-path examples/lambda-rust/Cargo.toml \
    --target-dir target/lambda-rust
