#!/usr/bin/env bash
# Runs every test: Rust unit, property and cluster tests (shared_fs, S3, Azure and GCS), and the
# Python harness tests. scripts/storage-servers.sh installs the storage emulators on first use
# (moto for S3, Azurite for Azure, fake-gcs-server for GCS), starts the shared ones on loopback and
# stops them afterwards. The framework tests (PyTorch, TensorFlow, Keras) use a virtual
# environment that scripts/ml-venv.sh makes once and caches.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/storage-servers.sh
source scripts/storage-servers.sh

ml_venv=$(scripts/ml-venv.sh)
export BATON_ML_PYTHON=$ml_venv/bin/python

cargo build --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
python3 -m unittest discover -s harness/python/tests
"$BATON_ML_PYTHON" -m unittest discover -s harness/python/tests_ml
