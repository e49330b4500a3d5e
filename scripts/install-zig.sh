#!/usr/bin/env bash
# Installs the Zig compilers the tests build Zig libraries with, from the
# `ziglang` package on PyPI, each into its own Python virtual environment:
#
#   $FLEXILIB_TOOLS_DIR/zig-0.13.0/bin/zig   the original FlexiLib's Zig (zigInit libraries)
#   $FLEXILIB_TOOLS_DIR/zig-0.17.1/bin/zig   current Zig (sdk/zig, examples/zig-sample)
#
# FLEXILIB_TOOLS_DIR defaults to target/tools; a relative path is taken from
# the repository root (as the tests do). Running it again is quick: a
# version already in place is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${FLEXILIB_TOOLS_DIR:-$PWD/target/tools}"
versions=(0.13.0 0.17.1)

# `python3 -m venv` needs ensurepip, which Debian ships separately.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq python3-venv
    else
        echo "install-zig.sh: python3 cannot create virtual environments; install python3-venv" >&2
        exit 1
    fi
fi

for version in "${versions[@]}"; do
    venv="$tools/zig-$version"
    zig="$venv/bin/zig"
    if [ -x "$zig" ] && [ "$("$zig" version 2>/dev/null)" = "$version" ]; then
        continue
    fi
    echo "install-zig.sh: installing ziglang==$version into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "ziglang==$version"
    # The wheel puts the compiler (and its lib/) in the ziglang package; link
    # it where the tests look. Zig finds its lib/ through the resolved path.
    package="$("$venv/bin/python" -c 'import os, ziglang; print(os.path.dirname(ziglang.__file__))')"
    ln -sf "$package/zig" "$zig"
    installed="$("$zig" version)"
    if [ "$installed" != "$version" ]; then
        echo "install-zig.sh: $zig reports version $installed, expected $version" >&2
        exit 1
    fi
done
