#!/usr/bin/env bash
# Starts a local Baton cluster (a master and two agents, SQLite and shared_fs storage under
# .baton/), runs an example experiment to completion, shows its trials and checkpoints, and
# stops the cluster. Usage: deploy/local-cluster.sh [CONFIG] [--keep]
#   CONFIG  an example config (default examples/linreg/grid.yaml)
#   --keep  leave the cluster running afterwards (stop it with: pkill -f .baton/bin/)
set -euo pipefail
cd "$(dirname "$0")/.."

config=examples/linreg/grid.yaml
keep=no
for arg in "$@"; do
  case "$arg" in
    --keep) keep=yes ;;
    -*) echo "unknown option $arg" >&2; exit 2 ;;
    *) config=$arg ;;
  esac
done

root=$PWD/.baton
port=${BATON_PORT:-8090}
export BATON_MASTER=http://127.0.0.1:$port

cargo build --release --bins
mkdir -p "$root/bin" "$root/logs"
cp target/release/baton target/release/baton-master target/release/baton-agent "$root/bin/"
baton=$root/bin/baton

pids=()
stop() { [ "$keep" = yes ] || kill "${pids[@]}" 2>/dev/null || true; }
trap stop EXIT

"$root/bin/baton-master" --listen "127.0.0.1:$port" --data-dir "$root/master" 2>"$root/logs/master.log" &
pids+=($!)
for agent in agent-1 agent-2; do
  "$root/bin/baton-agent" --master "$BATON_MASTER" --id "$agent" --slots 1 \
    --work-dir "$root/$agent" 2>"$root/logs/$agent.log" &
  pids+=($!)
done

for _ in $(seq 50); do
  connected=$("$baton" agent list --json 2>/dev/null | python3 -c 'import json,sys; print(sum(a["connected"] for a in json.load(sys.stdin)))' 2>/dev/null || echo 0)
  [ "$connected" -ge 2 ] && break
  sleep 0.2
done
"$baton" agent list

sed "s#/tmp/baton-checkpoints#$root/checkpoints#" "$config" >"$root/experiment.yaml"
id=$("$baton" experiment create "$root/experiment.yaml" "$(dirname "$config")" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "experiment $id created from $config; logs under $root/logs"

while :; do
  state=$("$baton" experiment describe "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  case "$state" in COMPLETED|CANCELED|ERRORED) break ;; esac
  sleep 1
done

"$baton" experiment describe "$id"
echo
"$baton" experiment list-checkpoints "$id"
echo
echo "checkpoints are stored under $root/checkpoints"
[ "$state" = COMPLETED ]
