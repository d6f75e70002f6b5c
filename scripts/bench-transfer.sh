#!/usr/bin/env bash
# Checkpoint transfer benchmark: Baton against `cp -r` (shared_fs) and `rclone` (S3, a local moto
# server), on the same data, in the same run, alternating the two sides.
#
#   scripts/bench-transfer.sh
#
# Environment:
#   BENCH_SIZE_MIB  checkpoint size in MiB (default 2048): one file of 3/4 of it plus 64 small
#                   files sharing the rest, in nested directories; random content
#   BENCH_RUNS      runs of each side of each pair (default 3); medians are reported
#   BENCH_CACHE     warm (default): before each run, flush and drop the page cache, then read the
#                   local source so that both sides start from it in memory (a checkpoint that was
#                   just written); cold: flush and drop only
#   BENCH_DIR       where the temporary data goes (default /tmp)
#   BENCH_OPS       which comparisons to run (default all): fs_upload fs_in_place s3_upload
#                   s3_download fs_download
#
# Installs what is missing: rclone and GNU time (apt-get), moto (.venv). Needs about 4× the data
# size of free disk (source, one copy, moto's spooled objects, one download). Removes its data and
# stops moto on exit. Wall times include `sync` wherever a side writes local files.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

SIZE_MIB=${BENCH_SIZE_MIB:-2048}
RUNS=${BENCH_RUNS:-3}
CACHE=${BENCH_CACHE:-warm}
OPS=${BENCH_OPS:-fs_upload fs_in_place s3_upload s3_download fs_download}
BASE_DIR=${BENCH_DIR:-/tmp}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}
command -v rclone >/dev/null || apt_install rclone
[ -x /usr/bin/time ] || apt_install time
if [ ! -x .venv/bin/moto_server ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet 'moto[server]'
fi

echo "building the transfer benchmark (release)..." >&2
BIN=$(cargo bench -p baton-common --bench transfer --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "transfer" and msg.get("executable"):
        print(msg["executable"])
')
[ -x "$BIN" ] || { echo "cannot find the transfer benchmark binary" >&2; exit 1; }

WORK=$(mktemp -d "$BASE_DIR/baton-bench.XXXXXX")
moto=
cleanup() {
  if [ -n "$moto" ]; then kill "$moto" 2>/dev/null || true; wait "$moto" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- moto on a free loopback port, one bucket ---
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/moto-tmp"
TMPDIR="$WORK/moto-tmp" .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$WORK/moto.log" 2>&1 &
moto=$!
python3 - "$port" <<'PY'
import sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(200):
    try:
        urllib.request.urlopen(base + "/moto-api/", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("moto did not start")
urllib.request.urlopen(urllib.request.Request(base + "/bench", method="PUT"), timeout=10)
PY
ENDPOINT=http://127.0.0.1:$port
export BIN
export SHARED_JSON="{\"type\":\"shared_fs\",\"host_path\":\"$WORK/store\"}"
export S3_JSON="{\"type\":\"s3\",\"bucket\":\"bench\",\"endpoint_url\":\"$ENDPOINT\",\"region\":\"us-east-1\",\"access_key\":\"testing\",\"secret_key\":\"testing\"}"
export RCLONE_CONFIG_BENCHS3_TYPE=s3 RCLONE_CONFIG_BENCHS3_PROVIDER=Other
export RCLONE_CONFIG_BENCHS3_ENDPOINT=$ENDPOINT RCLONE_CONFIG_BENCHS3_REGION=us-east-1
export RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID=testing RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY=testing
export RCLONE_CONFIG_BENCHS3_FORCE_PATH_STYLE=true
# rclone 1.60 checks each upload with `HEAD key?versionId=null`, which moto answers 400 (and rclone
# then retries the whole copy); Baton makes no such check either.
export RCLONE_CONFIG_BENCHS3_NO_HEAD=true
RCLONE="env -u AWS_CA_BUNDLE rclone --config /dev/null"
export RCLONE

# --- the checkpoint: one large file and 64 small ones in nested directories ---
SRC=$WORK/src/ckpt
export SRC
mkdir -p "$SRC/model" "$SRC/optimizer/shards"
big_kib=$((SIZE_MIB * 1024 * 3 / 4))
small_kib=$(((SIZE_MIB * 1024 - big_kib) / 64))
echo "writing a $SIZE_MIB MiB checkpoint from /dev/urandom..." >&2
head -c "${big_kib}K" /dev/urandom >"$SRC/model/weights.bin"
for i in $(seq -w 0 63); do
  if [ $((10#$i % 2)) -eq 0 ]; then d=$SRC/model; else d=$SRC/optimizer/shards; fi
  head -c "${small_kib}K" /dev/urandom >"$d/part-$i.bin"
done
BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}')
mkdir -p "$WORK/store" "$WORK/peer" "$WORK/out"

can_drop=yes
if ! (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
  can_drop=no
  echo "note: cannot drop the page cache; sources are kept warm for both sides" >&2
fi

# Brings the page cache to the same state before every run: flushed, dropped, source read.
prepare() {
  sync
  if [ "$1" = drop ] && [ "$can_drop" = yes ]; then echo 3 >/proc/sys/vm/drop_caches; fi
  shift
  if [ "$CACHE" = warm ] || [ "$can_drop" = no ]; then
    for path in "$@"; do find "$path" -type f -exec cat {} + >/dev/null; done
  fi
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
# timed OP SIDE CMD [ARGS...]: runs `sh -c CMD sh ARGS...` under GNU time, records wall s and RSS.
timed() {
  local op=$1 side=$2 cmd=$3
  shift 3
  local t0 t1 rss
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -v -o "$WORK/time.txt" sh -c "$cmd" sh "$@" >>"$WORK/run.log" 2>&1; then
    echo "failed: $op ($side)" >&2
    tail -n 20 "$WORK/run.log" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
  printf '%s\t%s\t%s\t%s\n' "$op" "$side" "$(awk "BEGIN {print $t1 - $t0}")" "$rss" >>"$RESULTS"
  printf '  %-28s %-6s %8.2f s  %7d KiB\n' "$op" "$side" "$(awk "BEGIN {print $t1 - $t0}")" "$rss" >&2
}

# pair OP: runs peer_OP and baton_OP RUNS times each, alternating which goes first.
pair() {
  local op=$1 run
  for run in $(seq 1 "$RUNS"); do
    if [ $((run % 2)) -eq 1 ]; then
      "peer_$op" "$run"; "baton_$op" "$run"
    else
      "baton_$op" "$run"; "peer_$op" "$run"
    fi
  done
}

# shared_fs upload: cp -r of the staged directory vs a staged Baton commit into the store.
peer_fs_upload() {
  prepare drop "$SRC"
  timed "shared_fs upload" peer 'cp -r "$SRC" "$1" && sync' "$WORK/peer/cp-$1"
  rm -rf "$WORK/peer/cp-$1"
}
baton_fs_upload() {
  prepare drop "$SRC"
  timed "shared_fs upload" baton '"$BIN" upload-staged "$SHARED_JSON" "$SRC" "$1" && sync' "up-$1"
  rm -rf "$WORK/store/up-$1"
}
# shared_fs in-place commit (hash only), for reference: no peer.
baton_fs_in_place() {
  rm -f "$WORK/store/inplace/metadata.json"
  prepare drop "$WORK/store/inplace"
  timed "shared_fs in-place commit" baton '"$BIN" commit-in-place "$SHARED_JSON" inplace && sync'
}
# S3 upload: rclone copy vs a Baton commit, to the same moto server.
peer_s3_upload() {
  prepare drop "$SRC"
  timed "s3 upload" peer '$RCLONE copy "$SRC" "benchs3:bench/rclone-$1"' "$1"
  $RCLONE purge "benchs3:bench/rclone-$1"
}
baton_s3_upload() {
  prepare drop "$SRC"
  timed "s3 upload" baton '"$BIN" upload-staged "$S3_JSON" "$SRC" "$1"' "up-$1"
  "$BIN" delete "$S3_JSON" "up-$1" >/dev/null
}
# S3 download of one Baton checkpoint: rclone copy vs a verified Baton download. moto's objects
# are not dropped from the cache: both sides read the same warm server.
peer_s3_download() {
  prepare keep
  timed "s3 download" peer '$RCLONE copy benchs3:bench/down "$1" && sync' "$WORK/out/rclone-$1"
  rm -rf "$WORK/out/rclone-$1"
}
baton_s3_download() {
  prepare keep
  timed "s3 download" baton '"$BIN" download "$S3_JSON" down "$1" && sync' "$WORK/out/baton-$1"
  rm -rf "$WORK/out/baton-$1"
}
# shared_fs download of one committed checkpoint: cp -r vs a verified Baton download.
peer_fs_download() {
  prepare drop "$WORK/store/down"
  timed "shared_fs download" peer 'cp -r "$WORK/store/down" "$1" && sync' "$WORK/out/cp-$1"
  rm -rf "$WORK/out/cp-$1"
}
baton_fs_download() {
  prepare drop "$WORK/store/down"
  timed "shared_fs download" baton '"$BIN" download "$SHARED_JSON" down "$1" && sync' "$WORK/out/baton-$1"
  rm -rf "$WORK/out/baton-$1"
}
export WORK

want() { case " $OPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
echo "timing $OPS ($RUNS runs per side, cache: $CACHE, drop_caches: $can_drop)..." >&2
if want fs_upload; then pair fs_upload; fi
if want fs_in_place; then
  cp -r "$SRC" "$WORK/store/inplace"
  for run in $(seq 1 "$RUNS"); do baton_fs_in_place "$run"; done
  rm -rf "$WORK/store/inplace"
fi
if want s3_upload; then pair s3_upload; fi
if want s3_download; then
  "$BIN" upload-staged "$S3_JSON" "$SRC" down >/dev/null
  pair s3_download
  "$BIN" delete "$S3_JSON" down >/dev/null
fi
if want fs_download; then
  "$BIN" upload-staged "$SHARED_JSON" "$SRC" down >/dev/null
  pair fs_download
fi

RCLONE_VERSION=$($RCLONE version 2>/dev/null | head -n 1) python3 - "$RESULTS" "$BYTES" "$SIZE_MIB" "$RUNS" "$CACHE" "$can_drop" <<'PY'
import statistics, sys
path, size, mib, runs, cache, dropped = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
rows = {}
for line in open(path):
    op, side, seconds, rss = line.split("\t")
    rows.setdefault(op, {}).setdefault(side, []).append((float(seconds), int(rss)))
peers = {"shared_fs upload": "cp -r", "shared_fs download": "cp -r",
         "s3 upload": "rclone copy", "s3 download": "rclone copy"}
import os, platform
print(f"{os.cpu_count()} CPUs, Linux {platform.release()}, {os.environ.get('RCLONE_VERSION', 'rclone ?')}")
print(f"Checkpoint of {mib} MiB ({size} bytes; 1 file of 3/4, 64 small files); "
      f"median of {runs} runs per side; cache: {cache}, drop_caches: {dropped}")
print()
print("| operation | peer | peer MB/s | Baton MB/s | ratio (Baton/peer time) | peer peak RSS | Baton peak RSS |")
print("|---|---|---:|---:|---:|---:|---:|")
def median(samples):
    return statistics.median(s for s, _ in samples), max(r for _, r in samples)
for op, sides in rows.items():
    b_time, b_rss = median(sides["baton"])
    b_rate = f"{size / b_time / 1e6:.0f}"
    if "peer" in sides:
        p_time, p_rss = median(sides["peer"])
        cells = [peers[op], f"{size / p_time / 1e6:.0f}", b_rate, f"{b_time / p_time:.2f}",
                 f"{p_rss / 1024:.0f} MiB"]
    else:
        cells = ["—", "—", b_rate, "—", "—"]
    print(f"| {op} | " + " | ".join(cells) + f" | {b_rss / 1024:.0f} MiB |")
print()
print("raw wall seconds (peer / baton):")
for op, sides in rows.items():
    print(f"  {op}: " + " / ".join(
        ", ".join(f"{s:.2f}" for s, _ in sides.get(side, [])) or "-" for side in ("peer", "baton")))
PY
