#!/usr/bin/env bash
# Installs the npm packages of the Workers example projects (from their
# package-lock.json, `npm ci`), which the Workers project tests run
# unbundled, as a developer's checkout has them after `npm install`:
#
#   examples/worker-hono-ts/node_modules/      hono (ESM) and ms (CommonJS)
#   examples/worker-node-compat/node_modules/  cookie-signature and
#                                              safe-buffer (CommonJS, for Node)
#
# Safe to run again: it only installs what is missing or out of date. The
# tests fail, naming this script, when the packages are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
    echo "install-worker-packages: npm not found: the Workers project tests will fail (apt-get install -y nodejs npm)" >&2
    exit 0
fi
for dir in examples/worker-hono-ts examples/worker-node-compat; do
    if [ ! -e "$dir/node_modules/.package-lock.json" ] ||
        [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        echo "install-worker-packages: npm ci in $dir" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
done
