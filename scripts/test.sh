#!/usr/bin/env bash
# Runs every test: Rust unit, property and cluster tests (shared_fs and S3), and the Python
# harness tests. Starts a real S3-compatible server (moto, installed into .venv on first use) on
# loopback for the S3 tests and stops it afterwards. The framework tests (PyTorch, TensorFlow,
# Keras) use a virtual environment that scripts/ml-venv.sh makes once and caches.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/moto_server ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet 'moto[server]'
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >/tmp/baton-test-moto-$port.log 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
python3 - "$port" <<'PY'
import sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/moto-api/", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
urllib.request.urlopen(urllib.request.Request(base + "/baton-test", method="PUT"), timeout=5)
PY
export BATON_TEST_S3_ENDPOINT=http://127.0.0.1:$port
export BATON_TEST_S3_BUCKET=baton-test
export BATON_MOTO_SERVER=$PWD/.venv/bin/moto_server

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
