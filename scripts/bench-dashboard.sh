#!/usr/bin/env bash
# Benchmark of the dashboard's experiment page against TensorBoard showing the same 1,000 runs of
# 100 points (see bench/dashboard/page_load.py): makes TensorBoard's environment
# (bench/dashboard/requirements.txt) and Playwright's (scripts/browser-env.sh), then runs it.
# Usage: scripts/bench-dashboard.sh [--repeat N] [--runs N --points N] [--baton-url URL --baton-token TOKEN]
# Needs release binaries: cargo build --release -p baton-master -p baton-fleet
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/ml-venv.sh bench/dashboard/requirements.txt)
node_path=$(scripts/browser-env.sh)
export BATON_BROWSER_NODE_PATH=$node_path
exec "$venv/bin/python" bench/dashboard/page_load.py "$@"
