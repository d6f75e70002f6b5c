#!/usr/bin/env bash
# Prints the node_modules directory holding tests/browser/package-lock.json (Playwright's
# playwright-core, which drives Debian's chromium), installing it with `npm ci` on first use under
# ~/.cache/baton/ (keyed by the lock file's hash, so a reused machine skips the download and a
# changed lock gets a new directory). A half-made one is made again. No browser is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=tests/browser/package-lock.json
key=$(sha256sum "$lock" | cut -c1-16)
dir="${XDG_CACHE_HOME:-$HOME/.cache}/baton/browser-$key"
if [ ! -f "$dir/.complete" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  cp tests/browser/package.json "$lock" "$dir/"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  touch "$dir/.complete"
fi
echo "$dir/node_modules"
