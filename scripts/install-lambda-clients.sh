#!/usr/bin/env bash
# Installs AWS's unmodified Lambda runtime clients that the Lambda tests run
# functions with, and builds the Rust example function:
#
#   target/lambda-venv/         Python venv with awslambdaric (PyPI), and
#                               cargo-lambda (PyPI), whose `cargo lambda
#                               invoke` the tests call the Invoke API with
#   target/lambda-rust/release/bootstrap
#                               examples/lambda-rust, built with lambda_http
#                               (crates.io) from its own Cargo.lock
#   examples/lambda-node/node_modules/
#                               aws-lambda-ric (npm) from package-lock.json;
#                               its install builds curl and aws-lambda-cpp
#                               from source (about a minute), which needs
#                               Debian's cmake autoconf automake libtool
#                               libcurl4-openssl-dev (installed here when
#                               run as root with apt-get)
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
if [ ! -x "$venv/bin/cargo-lambda" ]; then
    echo "install-lambda-clients: installing cargo-lambda into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'cargo-lambda>=1.9,<2'
fi

echo "install-lambda-clients: building examples/lambda-rust" >&2
cargo build --release --locked --quiet \
    --manifest-path examples/lambda-rust/Cargo.toml \
    --target-dir target/lambda-rust

node_dir=examples/lambda-node
node_build_tools() { # true when aws-lambda-ric's native build can run
    command -v cmake >/dev/null && command -v autoconf >/dev/null &&
        command -v automake >/dev/null && command -v libtoolize >/dev/null &&
        command -v curl-config >/dev/null && command -v make >/dev/null &&
        command -v g++ >/dev/null
}
if ! command -v npm >/dev/null 2>&1; then
    echo "install-lambda-clients: npm not found: the Node tests will fail (apt-get install -y nodejs npm)" >&2
elif [ ! -e "$node_dir/node_modules/aws-lambda-ric/rapid-client.node" ] ||
    [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
    if ! node_build_tools && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "install-lambda-clients: installing aws-lambda-ric's build tools (apt-get)" >&2
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                cmake autoconf automake libtool libcurl4-openssl-dev make g++; } >/dev/null
    fi
    if node_build_tools; then
        echo "install-lambda-clients: installing aws-lambda-ric into $node_dir/node_modules (builds its native client)" >&2
        (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    else
        echo "install-lambda-clients: cmake, autoconf, automake, libtool or libcurl4-openssl-dev missing: aws-lambda-ric not installed, the Node tests will fail" >&2
    fi
fi
