#!/usr/bin/env bash
# Installs the npm packages that build the JavaScript guest of
# examples/wasm-js (`@bytecodealliance/componentize-js` and
# `@bytecodealliance/jco`, pinned by its package.json and package-lock.json)
# with `npm ci`, outside the source tree:
#
#   $FLEXILIB_TOOLS_DIR/wasm-js/node_modules/   (default target/tools)
#
# Everything comes from the npm registry, with install scripts off: the
# engine (StarlingMonkey), Wizer's binary (@bytecodealliance/wizer-linux-x64)
# and wasm-tools are in the packages. Ahead-of-time compilation (weval,
# `--aot`) is not used: its binary would be downloaded from outside the
# registry at build time.
#
# Safe to run again: it does nothing while the installed lock matches the
# example's. examples/wasm-js/build.sh runs it when needed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

tools="${FLEXILIB_TOOLS_DIR:-$root/target/tools}"
case "$tools" in /*) ;; *) tools="$root/$tools" ;; esac
dir="$tools/wasm-js"
example=examples/wasm-js

if ! command -v npm >/dev/null 2>&1; then
    echo "install-wasm-js-tools.sh: npm not found: the JavaScript wasm guest cannot be built and its tests will fail (apt-get install -y nodejs npm)" >&2
    exit 0
fi
# One installer at a time (a test and a benchmark may build at once).
mkdir -p "$dir"
exec 9>"$dir.lock"
flock 9
if cmp -s "$example/package-lock.json" "$dir/node_modules/.flexilib-package-lock.json" &&
    [ -x "$dir/node_modules/.bin/componentize-js" ]; then
    exit 0
fi
echo "install-wasm-js-tools.sh: npm ci (componentize-js, jco) in $dir" >&2
started=$(date +%s)
cp "$example/package.json" "$example/package-lock.json" "$dir/"
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
cp "$example/package-lock.json" "$dir/node_modules/.flexilib-package-lock.json"
echo "install-wasm-js-tools.sh: installed in $(($(date +%s) - started)) s" >&2
