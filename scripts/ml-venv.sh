#!/usr/bin/env bash
# Prints the path of a virtual environment holding harness/python/requirements-ml.txt (or the
# requirements file given, e.g. bench/dashboard/requirements.txt), creating it on first use under
# ~/.cache/baton/ (keyed by the requirements' hash, so a reused machine skips the download and a
# changed list gets a new environment). A half-made one is made again.
# Usage: scripts/ml-venv.sh [REQUIREMENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=${1:-harness/python/requirements-ml.txt}
key=$(sha256sum "$requirements" | cut -c1-16)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/baton/ml-$key"
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.complete"
fi
echo "$venv"
