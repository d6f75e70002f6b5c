#!/usr/bin/env bash
# Benchmark of the per-step harness round trip against a raw newline-JSON echo (see
# bench/harness_roundtrip.py): builds the release binaries, then runs it.
# Usage: scripts/bench-harness.sh [--count N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
exec python3 bench/harness_roundtrip.py "$@"
