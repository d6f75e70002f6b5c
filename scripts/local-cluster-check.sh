#!/usr/bin/env bash
# Walks deploy/local-cluster.sh through what an operator does: a run, a run with --keep, a second
# start while the kept cluster runs (refused), stop, stop again, and a run after it. Needs a
# release build (the script makes it); not part of scripts/test.sh. BATON_PORT picks the port.
set -euo pipefail
cd "$(dirname "$0")/.."
script=deploy/local-cluster.sh
config=examples/linreg/single.yaml
ours() { ps -eo args= | grep -c "^$PWD/.baton/bin/baton-" || true; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(ours)" = 0 ] || fail "a local cluster is running already; stop it first ($script stop)"

"$script" "$config" >/dev/null 2>&1 || fail "a plain run failed"
[ "$(ours)" = 0 ] || fail "a plain run left processes behind"
! grep -l $'\x1b' .baton/logs/*.log || fail "daemon logs hold ANSI escapes"

kept=$("$script" "$config" --keep 2>&1) || fail "a run with --keep failed: $kept"
grep -q "stop it:  $script stop" <<<"$kept" || fail "--keep does not say how to stop: $kept"
[ "$(ours)" = 3 ] || fail "--keep does not leave a master and two agents running"

if again=$("$script" "$config" 2>&1); then fail "a second start while kept succeeded"; fi
grep -q "already running (master pid" <<<"$again" || fail "unclear refusal: $again"
grep -q "export BATON_MASTER=http://127.0.0.1:" <<<"$again" || fail "no address: $again"

"$script" stop >/dev/null 2>&1 || fail "stop failed"
[ "$(ours)" = 0 ] || fail "stop left processes behind"
[ "$("$script" stop 2>&1)" = "no local cluster is running" ] || fail "stop twice"

"$script" "$config" >/dev/null 2>&1 || fail "a run after stop failed"
[ "$(ours)" = 0 ] || fail "a run after stop left processes behind"
echo "local-cluster.sh: run, --keep, refused second start, stop, stop again, run again: ok"
