#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/kubernetes against the
# Kubernetes API schemas, offline, with `kubernetes-validate` from PyPI
# (installed into $FLEXILIB_TOOLS_DIR/kubernetes-validate, default
# target/tools). No cluster or image builder runs here: this checks every
# field's name and type, and that required ones are present.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${FLEXILIB_TOOLS_DIR:-$PWD/target/tools}"
venv="$tools/kubernetes-validate"
version=1.37.0
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$version"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$version"
fi
manifests=(deploy/kubernetes/configmap.yaml deploy/kubernetes/deployment.yaml deploy/kubernetes/service.yaml)
"$venv/bin/kubernetes-validate" --strict --kubernetes-version 1.34 "${manifests[@]}"
