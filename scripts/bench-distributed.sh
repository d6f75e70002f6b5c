#!/usr/bin/env bash
# Benchmark of moving a two-rank trial against a one-rank trial with the same checkpoint size
# (see bench/distributed_move.py): builds the release binaries, then runs it.
# Usage: scripts/bench-distributed.sh [--size-mib N] [--cycles N] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
exec python3 bench/distributed_move.py "$@"
