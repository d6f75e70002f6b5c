#!/usr/bin/env bash
# Runs examples/torch_mlp on CUDA GPUs: a master and two agents on this host, each offering one
# GPU by UUID (--gpus; both the same GPU when the host has one), the trial moved from one agent to
# the other mid-training; prints the device the checkpoints were written on and the save,
# transfer (verified restore) and load times from the trial's log. Needs nvidia-smi and a CUDA
# torch in the framework environment (scripts/ml-venv.sh). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t gpus < <(nvidia-smi --query-gpu=uuid --format=csv,noheader)
[ "${#gpus[@]}" -ge 1 ] || { echo "no GPU found by nvidia-smi" >&2; exit 1; }
first=${gpus[0]}
second=${gpus[1]:-${gpus[0]}}
cargo build --release --bins
python=$(scripts/ml-venv.sh)/bin/python
"$python" -c 'import torch; assert torch.cuda.is_available(), "this torch has no CUDA"; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
work=$(mktemp -d /tmp/baton-gpu-check-XXXXXX)
bin=target/release
export BATON_MASTER=http://127.0.0.1:8097
"$bin/baton-master" --listen 127.0.0.1:8097 --data-dir "$work/master" >"$work/master.log" 2>&1 &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
sleep 1
"$bin/baton-agent" --id gpu-a --gpus "$first" --work-dir "$work/gpu-a" >"$work/gpu-a.log" 2>&1 &
pids+=($!)
"$bin/baton-agent" --id gpu-b --gpus "$second" --work-dir "$work/gpu-b" >"$work/gpu-b.log" 2>&1 &
pids+=($!)
sleep 3
"$bin/baton" agent list
sed -e "s#python3 train.py#$python train.py#" -e "s#/tmp/baton-checkpoints#$work/checkpoints#" \
    -e 's#  seed: 7#  seed: 7\n  step_seconds: 0.02#' examples/torch_mlp/single.yaml >"$work/experiment.yaml"
id=$("$bin/baton" --json experiment create "$work/experiment.yaml" examples/torch_mlp | "$python" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
trial() { "$bin/baton" --json experiment describe "$id" | "$python" -c "import json,sys; t=json.load(sys.stdin)['trials'][0]; print(t['$1'])"; }
until [ "$(trial steps_completed)" -gt 60 ] 2>/dev/null; do sleep 0.5; done
from=$(trial agent_id)
to=$([ "$from" = gpu-a ] && echo gpu-b || echo gpu-a)
"$bin/baton" trial move "$(trial id)" --to "$to"
until [ "$(trial state)" = COMPLETED ]; do sleep 1; done
"$bin/baton" trial describe "$(trial id)"
echo "--- timings from the trial's log"
"$bin/baton" trial logs "$(trial id)" | grep -E "starting fresh|resuming|saved checkpoint|loaded checkpoint|restored checkpoint"
"$bin/baton" --json checkpoint describe "$(trial latest_checkpoint)" | "$python" -c 'import json,sys; m=json.load(sys.stdin)["metadata"]["metadata"]; print("final checkpoint written on", m["device"], "with torch", m["torch_version"])'

# The distributed example with NCCL: one rank on each agent's GPU, moved once (the gang is
# suspended, checkpointed by both ranks and placed again). Needs two GPUs.
if [ "${#gpus[@]}" -lt 2 ]; then
  echo "one GPU: skipping the two-rank NCCL run (it needs two GPUs)"
  exit 0
fi
sed -e "s#python3 train.py#$python train.py#" -e "s#/tmp/baton-checkpoints#$work/checkpoints#" \
    -e 's#  seed: 7#  seed: 7\n  step_seconds: 0.02#' examples/torch_ddp/single.yaml >"$work/ddp.yaml"
id=$("$bin/baton" --json experiment create "$work/ddp.yaml" examples/torch_ddp | "$python" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
until [ "$(trial steps_completed)" -gt 50 ] 2>/dev/null; do sleep 0.5; done
"$bin/baton" experiment pause "$id"
until [ "$(trial state)" = PAUSED ]; do sleep 0.2; done
"$bin/baton" experiment activate "$id"
until [ "$(trial state)" = COMPLETED ]; do sleep 1; done
"$bin/baton" trial describe "$(trial id)"
echo "--- the ranks' log lines"
"$bin/baton" trial logs "$(trial id)" | grep -E "rank [0-9]|restored checkpoint|part [0-9]"
