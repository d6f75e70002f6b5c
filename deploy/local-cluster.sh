#!/usr/bin/env bash
# Starts a local Baton cluster (a master and two agents, SQLite and shared_fs storage under
# .baton/), runs an example experiment to completion, shows its trials and checkpoints, and
# stops the cluster.
# Usage: deploy/local-cluster.sh [CONFIG] [--keep]
#        deploy/local-cluster.sh stop
#   CONFIG  an example config (default examples/linreg/grid.yaml)
#   --keep  leave the cluster running afterwards
#   stop    stop a cluster left running by --keep: its daemons and the trials they run
# BATON_PORT sets the master's port (default 8090); its web dashboard and JSON API listen on
# BATON_HTTP_PORT (default the next port, 8091): http://127.0.0.1:8091/
set -euo pipefail
self=$0
cd "$(dirname "$0")/.."

root=$PWD/.baton
pid_file=$root/pids
port=${BATON_PORT:-8090}
http_port=${BATON_HTTP_PORT:-$((port + 1))}

usage() { sed -n '5,10s/^# \{0,1\}//p' "$0"; }

# Pids of the processes running binaries of $root/bin (daemons and trial supervisors); nothing
# else, however it is named.
our_processes() {
  ps -eo pid=,args= | awk -v prefix="$root/bin/baton-" \
    '{ pid = $1; sub(/^ *[0-9]+ +/, ""); if (index($0, prefix) == 1) print pid }'
}

# Stops our processes: SIGTERM to the daemons and to each trial's process group, SIGKILL to
# whatever is left after 15 s. Returns 1 when nothing was running.
stop_cluster() {
  local pids pid
  pids=$(our_processes)
  rm -f "$pid_file"
  [ -n "$pids" ] || return 1
  echo "stopping the local cluster (pids $(echo $pids))" >&2
  signal_all TERM $pids
  for _ in $(seq 150); do
    [ -z "$(our_processes)" ] && return 0
    sleep 0.1
  done
  pids=$(our_processes)
  echo "still running after 15 s, killing: $(echo $pids)" >&2
  signal_all KILL $pids
}

# Sends SIGNAL to each daemon, and to the process group of each trial supervisor (the trial).
signal_all() {
  local signal=$1 pid
  shift
  for pid in "$@"; do
    if ps -o args= -p "$pid" | grep -q ' __supervise-trial '; then
      kill -s "$signal" -- "-$pid" 2>/dev/null || true
    else
      kill -s "$signal" "$pid" 2>/dev/null || true
    fi
  done
}

# Says that the cluster "is already running" or "keeps running" ($1), and how to use or stop it.
describe_running() {
  local name pid address dashboard
  while read -r name pid address dashboard; do
    if [ "$name" = master ] && our_processes | grep -qx "$pid"; then
      echo "a local cluster $1 (master pid $pid on $address; logs in $root/logs)"
      echo "use it:   export BATON_MASTER=http://$address; $root/bin/baton agent list"
      [ -n "$dashboard" ] && echo "watch it: http://$dashboard/ (web dashboard)"
      echo "stop it:  $self stop"
      return
    fi
  done < <(cat "$pid_file" 2>/dev/null)
  echo "processes of $root/bin are running (pids $(echo $(our_processes)))"
  echo "stop them:  $self stop"
}

config=examples/linreg/grid.yaml
keep=no
case "${1:-}" in
  stop)
    [ $# -eq 1 ] || { usage >&2; exit 2; }
    if stop_cluster; then echo "stopped"; else echo "no local cluster is running"; fi
    exit 0 ;;
  -h|--help) usage; exit 0 ;;
esac
for arg in "$@"; do
  case "$arg" in
    --keep) keep=yes ;;
    -*) echo "unknown option $arg" >&2; usage >&2; exit 2 ;;
    *) config=$arg ;;
  esac
done
[ -f "$config" ] || { echo "no such config: $config" >&2; exit 2; }

if [ -n "$(our_processes)" ]; then
  describe_running "is already running" >&2
  exit 1
fi

export BATON_MASTER=http://127.0.0.1:$port
cargo build --release --bins
mkdir -p "$root/bin" "$root/logs"
# A new name, then a rename: a binary that some process still runs is never written to.
for bin in baton baton-master baton-agent; do
  cp "target/release/$bin" "$root/bin/.$bin.new"
  mv -f "$root/bin/.$bin.new" "$root/bin/$bin"
done
baton=$root/bin/baton

master_up=no
finish() {
  if [ "$keep" = yes ] && [ "$master_up" = yes ]; then
    echo
    describe_running "keeps running"
  else
    stop_cluster || true
  fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# Runs a daemon in the background with its output in $1, in a process group of its own (job
# control): a Ctrl-C of this script does not reach it, and the script decides whether it stops.
start_daemon() {
  local log=$1
  shift
  set -m
  "$@" >"$log" 2>&1 &
  daemon=$!
  set +m
}

rm -f "$root/master.addr"
start_daemon "$root/logs/master.log" "$root/bin/baton-master" --listen "127.0.0.1:$port" \
  --data-dir "$root/master" --address-file "$root/master.addr" --http-listen "127.0.0.1:$http_port"
master=$daemon
echo "master $master 127.0.0.1:$port 127.0.0.1:$http_port" >"$pid_file"
until [ -f "$root/master.addr" ]; do
  if ! our_processes | grep -qx "$master"; then
    echo "the master did not start ($root/logs/master.log):" >&2
    grep '^Error: ' "$root/logs/master.log" >&2 || tail -n 5 "$root/logs/master.log" >&2
    exit 1
  fi
  sleep 0.1
done
master_up=yes
for agent in agent-1 agent-2; do
  start_daemon "$root/logs/$agent.log" "$root/bin/baton-agent" --master "$BATON_MASTER" \
    --id "$agent" --slots 1 --work-dir "$root/$agent"
  echo "$agent $daemon" >>"$pid_file"
done

connected=0
for _ in $(seq 100); do
  connected=$("$baton" agent list --json 2>/dev/null | python3 -c 'import json,sys; print(sum(a["connected"] for a in json.load(sys.stdin)))' 2>/dev/null || echo 0)
  [ "$connected" -ge 2 ] && break
  sleep 0.2
done
if [ "$connected" -lt 2 ]; then
  echo "only $connected of 2 agents connected within 20 s; see $root/logs/agent-*.log" >&2
  exit 1
fi
"$baton" agent list

sed "s#/tmp/baton-checkpoints#$root/checkpoints#" "$config" >"$root/experiment.yaml"
id=$("$baton" experiment create "$root/experiment.yaml" "$(dirname "$config")" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "experiment $id created from $config; logs under $root/logs"
echo "watch it at http://127.0.0.1:$http_port/ui/#/experiments/$id"

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
