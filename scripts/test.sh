#!/usr/bin/env bash
# Runs every test: Rust unit, property and cluster tests (shared_fs, S3, Azure and GCS), and the
# Python harness tests, then the cluster tests that exercise the master's store once more with the
# master on PostgreSQL. scripts/storage-servers.sh installs the storage emulators on first use
# (moto for S3, Azurite for Azure, fake-gcs-server for GCS), starts the shared ones on loopback and
# stops them afterwards; scripts/postgres-server.sh does the same for a private PostgreSQL server.
# The framework tests (PyTorch, TensorFlow, Keras) use a virtual environment that
# scripts/ml-venv.sh makes once and caches; the browser tests drive Debian's chromium with
# Playwright's playwright-core, which scripts/browser-env.sh installs once and caches.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/storage-servers.sh
source scripts/storage-servers.sh
# shellcheck source=scripts/postgres-server.sh
source scripts/postgres-server.sh

ml_venv=$(scripts/ml-venv.sh)
export BATON_ML_PYTHON=$ml_venv/bin/python
browser_node_path=$(scripts/browser-env.sh)
export BATON_BROWSER_NODE_PATH=$browser_node_path

cargo build --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
python3 -m unittest discover -s harness/python/tests
"$BATON_ML_PYTHON" -m unittest discover -s harness/python/tests_ml

# The master on PostgreSQL (a fresh database per cluster): lifecycle, moves, GC, restarts, stopping,
# collection while running, pins, adaptive search, deletion, gangs, security and hostile input;
# about 2.5 minutes more on 2 cores.
postgres_binaries=(walking_skeleton moves gc gc_while_running pins adaptive restarts delete distributed security hostile stopping)
export BATON_TEST_DATABASE=postgres
if cargo nextest --version >/dev/null 2>&1; then
  filter=$(printf 'binary(%s) | ' "${postgres_binaries[@]}")
  # --workspace as above: the same features, so nothing is built again.
  cargo nextest run --workspace --no-fail-fast -E "package(baton-cluster-tests) & (${filter% | })"
else
  targets=()
  for binary in "${postgres_binaries[@]}"; do targets+=(--test "$binary"); done
  cargo test -p baton-cluster-tests --no-fail-fast "${targets[@]}"
fi
