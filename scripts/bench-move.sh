#!/usr/bin/env bash
# Benchmark of the control-plane time of moving a trial (see bench/move_latency.py): builds the
# release binaries, then starts a master and two agents on loopback and moves a trial 20 times.
# Usage: scripts/bench-move.sh [--moves N] [--settle SECONDS] [--keep] [--json-out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins

python3 bench/move_latency.py "$@" &
bench=$!
# The benchmark stops its master, agents and trial processes itself when it ends or gets SIGTERM.
trap 'kill -TERM "$bench" 2>/dev/null || true; wait "$bench" 2>/dev/null || true' INT TERM
wait "$bench"
