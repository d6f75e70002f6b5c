#!/usr/bin/env bash
# Benchmark of a move of a slow-starting trial with a large checkpoint (see bench/overlap_move.py):
# builds the release binaries, then runs it. Usage: scripts/bench-overlap.sh [--size-mib N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
exec python3 bench/overlap_move.py "$@"
