#!/usr/bin/env bash
# Benchmark of checkpointing a ~1 GiB PyTorch state through Baton (see bench/torch_checkpoint.py):
# builds the release binaries and the framework environment, then runs it.
# Usage: scripts/bench-torch.sh [--size-mib N] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
ml_venv=$(scripts/ml-venv.sh)
exec python3 bench/torch_checkpoint.py --ml-python "$ml_venv/bin/python" "$@"
