#!/usr/bin/env bash
# Every check and test: formatting, lints, unit tests, end-to-end tests
# against the real binary with real Rust and C libraries, and a smoke run of
# the benchmarks.
#
# Needs Rust and a C compiler. What else the tests need is installed when
# it can be (as root, through apt-get); the benchmark smoke needs wrk and
# nginx (bench.py) and is skipped, with the reason, when they cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs Debian packages for the commands not found; false if it cannot.
ensure_commands() { # ensure_commands "cmd:package" ...
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    echo "test.sh: installing ${missing[*]}" >&2
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1
}

# The tests signal the server with the kill program and pin with taskset.
ensure_commands python3:python3 || { echo "test.sh: python3 is required" >&2; exit 1; }
# The TLS tests make certificates with openssl and fetch with curl.
ensure_commands openssl:openssl curl:curl || echo "test.sh: openssl or curl missing: the TLS tests will fail" >&2
# The ACME tests run against pebble, Let's Encrypt's test CA (Debian's package).
ensure_commands pebble:pebble || echo "test.sh: pebble missing and not installable here: the ACME tests against it are skipped (apt-get install -y pebble)" >&2
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || ensure_commands kill:procps || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The server without its optional features (no ACME, no compression) builds clean too.
cargo clippy -p flexilib --all-targets --no-default-features -- -D warnings
# The end-to-end tests load the example cdylib from the build directory.
cargo build --workspace
# The Zig library tests build with Zig 0.13 and 0.17.1 from PyPI (target/tools).
scripts/install-zig.sh
scripts/install-lambda-clients.sh # AWS's Lambda runtime clients for the Lambda tests
scripts/install-worker-packages.sh # npm packages of the Workers example projects
scripts/install-wasm-js-tools.sh # componentize-js and jco (npm), which build the JavaScript wasm guest
scripts/install-metrics-client.sh # Python's prometheus-client, which the admin tests parse /metrics with
cargo test --workspace
# The Kubernetes manifests against the API schemas (kubernetes-validate from PyPI).
scripts/check-kubernetes.sh

# Benchmarks: check that they run (a few seconds each); they assert no speed.
# The lifecycle smoke builds the release binaries the smoke runs use.
python3 bench/lifecycle.py --smoke
if ensure_commands wrk:wrk nginx:nginx-light taskset:util-linux h2load:nghttp2-client; then
    python3 bench/bench.py --smoke
    # Cloudflare Workers hello world against workerd (from npm, when it installs).
    python3 bench/workers.py --smoke --no-build
else
    echo "test.sh: benchmark smoke skipped: wrk, nginx, taskset or h2load missing and not installable here (apt-get install -y wrk nginx-light util-linux nghttp2-client as root)" >&2
fi
