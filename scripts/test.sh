#!/usr/bin/env bash
# Runs every test: Rust unit, property and cluster tests, and the Python harness tests.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
python3 -m unittest discover -s harness/python/tests
