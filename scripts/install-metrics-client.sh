#!/usr/bin/env bash
# Installs the Python `prometheus-client` package (PyPI) that the admin
# listener's tests parse `/metrics` with, into a virtual environment:
#
#   target/metrics-venv/        Python venv with prometheus-client
#
# Safe to run again: it only does what is missing. The tests fail, naming
# this script, when the venv is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/metrics-venv
if ! "$venv/bin/python3" -c 'import prometheus_client.parser' >/dev/null 2>&1; then
    echo "install-metrics-client: creating $venv with prometheus-client" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'prometheus-client>=0.20,<1'
fi
