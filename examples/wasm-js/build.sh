#!/usr/bin/env bash
# Builds the JavaScript guest of this example into a wasi:http component:
#
#   examples/wasm-js/build.sh [OUT.wasm]
#
# (default target/wasm-js/hello.wasm). componentize-js (npm, installed with
# jco by scripts/install-wasm-js-tools.sh under $FLEXILIB_TOOLS_DIR, default
# target/tools) puts app.js into the StarlingMonkey engine (SpiderMonkey
# built for WASI), runs its top level once and snapshots the result with
# Wizer, and binds the engine's fetch event to the world's
# `wasi:http/incoming-handler` export (wit/world.wit). The WASI packages the
# world uses come from the jco npm package (its builtin WASI 0.2.12 WIT),
# renamed to 0.2.10: the engine inside componentize-js 0.23.0 is built
# against 0.2.10 and exports its handler at that version only (the test
# tests/wasm_js.rs serves the result end to end). `jco wit` then checks
# the component's world and writes it beside OUT (OUT.wit). A build whose
# sources and tool versions have not changed is kept (the key is stored
# beside OUT), so running it again is quick; a build takes 15-30 s.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

out="${1:-target/wasm-js/hello.wasm}"
case "$out" in /*) ;; *) out="$root/$out" ;; esac
tools="${FLEXILIB_TOOLS_DIR:-$root/target/tools}"
case "$tools" in /*) ;; *) tools="$root/$tools" ;; esac
example=examples/wasm-js

scripts/install-wasm-js-tools.sh
bin="$tools/wasm-js/node_modules/.bin"
if [ ! -x "$bin/componentize-js" ]; then
    echo "build.sh: componentize-js is not installed in $tools/wasm-js (scripts/install-wasm-js-tools.sh needs npm)" >&2
    exit 1
fi

key="$( (cat "$example/package-lock.json" "$example/app.js"; find "$example/wit" -name '*.wit' | sort | xargs cat) |
    sha256sum | cut -d' ' -f1)"
if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ]; then
    exit 0
fi

mkdir -p "$(dirname "$out")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
wasi_wit="$tools/wasm-js/node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12"
if [ ! -d "$wasi_wit/wasi-http" ]; then
    echo "build.sh: no WASI WIT in the installed jco ($wasi_wit)" >&2
    exit 1
fi
mkdir -p "$work/wit/deps"
cp "$example/wit/world.wit" "$work/wit/"
for package in "$wasi_wit"/wasi-*; do
    name="$(basename "$package")"
    mkdir -p "$work/wit/deps/$name"
    for file in "$package"/*.wit; do
        sed -e 's/@0\.2\.12/@0.2.10/g' -e 's/version = 0\.2\.1[12]/version = 0.2.10/g' \
            "$file" >"$work/wit/deps/$name/$(basename "$file")"
    done
done
# From the example's directory, so that stack traces name `app.js`.
(cd "$example" && "$bin/componentize-js" --wit "$work/wit" --world-name hello -o "$work/out.wasm" app.js) \
    >"$work/log" 2>&1 || {
    cat "$work/log" >&2
    exit 1
}
"$bin/jco" wit "$work/out.wasm" >"$work/out.wit"
if ! grep -q 'export wasi:http/incoming-handler@0\.2\.' "$work/out.wit"; then
    echo "build.sh: the component does not export wasi:http/incoming-handler:" >&2
    cat "$work/out.wit" >&2
    exit 1
fi
mv "$work/out.wit" "$out.wit"
mv "$work/out.wasm" "$out"
echo "$key" >"$out.key"
echo "examples/wasm-js/build.sh: built $out ($(($(stat -c %s "$out") / 1024)) KiB) in $(($(date +%s) - started)) s" >&2
