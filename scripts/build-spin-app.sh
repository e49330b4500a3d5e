#!/usr/bin/env bash
# Builds the Python component of examples/spin-app with componentize-py
# against the WIT that the spin-sdk package ships (both from PyPI, installed
# into a virtual environment under $FLEXILIB_TOOLS_DIR, default target/tools):
#
#   scripts/build-spin-app.sh [OUT.wasm] [WORLD]
#
# OUT defaults to target/spin-app/app.wasm (where examples/spin-app/spin.toml
# looks for it); WORLD to `app` (examples/spin-app/wit/world.wit; the tests
# also build `app-with-sqlite`). A build whose sources, world and tool
# versions have not changed is kept (the key is stored beside OUT), so
# running it again is quick. Rust cannot target wasm32 here; componentize-py
# bundles CPython into the component (about 18 MB, 10-20 s to build).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

out="${1:-target/spin-app/app.wasm}"
world="${2:-app}"
tools="${FLEXILIB_TOOLS_DIR:-$root/target/tools}"
case "$tools" in /*) ;; *) tools="$root/$tools" ;; esac
venv="$tools/spin-py"
componentize_py_version=0.25.1
spin_sdk_version=5.0.0
app=examples/spin-app

# `python3 -m venv` needs ensurepip, which Debian ships separately.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "build-spin-app.sh: python3 cannot create virtual environments; install python3-venv" >&2
    exit 1
fi
wanted="componentize-py==$componentize_py_version spin-sdk==$spin_sdk_version"
# One installer at a time (the tests build two worlds at once).
mkdir -p "$tools"
exec 9>"$tools/spin-py.lock"
flock 9
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$wanted" ]; then
    echo "build-spin-app.sh: installing $wanted into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $wanted
    echo "$wanted" >"$venv/.installed"
fi
sdk="$("$venv/bin/python" -c 'import os, spin_sdk; print(os.path.dirname(spin_sdk.__file__))')"

key="$( (echo "$wanted $world"; cat "$app/wit/world.wit" "$app"/app/*.py) | sha256sum | cut -d' ' -f1)"
if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ]; then
    exit 0
fi

# The example's world, with the SDK's WIT packages (wasi:*, fermyon:spin@2.0.0) as deps.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wit"
cp "$app/wit/world.wit" "$work/wit/"
ln -s "$sdk/wit/deps" "$work/wit/deps"
mkdir -p "$(dirname "$out")"
started=$(date +%s)
"$venv/bin/componentize-py" -d "$work/wit" -w "flexilib:spin-app/$world" \
    componentize -p "$app/app" app -o "$work/out.wasm" >"$work/log" 2>&1 || {
    cat "$work/log" >&2
    exit 1
}
mv "$work/out.wasm" "$out"
echo "$key" >"$out.key"
echo "build-spin-app.sh: built $out (world $world) in $(($(date +%s) - started)) s" >&2
