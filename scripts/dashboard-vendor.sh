#!/usr/bin/env bash
# Refreshes the web dashboard's vendored chart library, master/dashboard/vendor/, from the
# versions pinned in master/dashboard/vendor-build/package-lock.json: `npm ci` in a temporary copy
# (node_modules never lands in the repository), then copies uPlot's minified script, its
# stylesheet and its LICENSE. The result is checked in, so building the master needs no npm.
# To move to another uPlot version: edit vendor-build/package.json, run
# `npm install --package-lock-only` there, then this script, and commit all three.
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=master/dashboard/vendor-build
target_dir=master/dashboard/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp "$source_dir/package.json" "$source_dir/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

dist=$work/node_modules/uplot/dist
mkdir -p "$target_dir"
cp "$dist/uPlot.iife.min.js" "$target_dir/uPlot.iife.min.js"
cp "$dist/uPlot.min.css" "$target_dir/uPlot.min.css"
cp "$work/node_modules/uplot/LICENSE" "$target_dir/uPlot.LICENSE"
version=$(node -p "require('$work/node_modules/uplot/package.json').version")
echo "uPlot $version -> $target_dir/" >&2
ls -l "$target_dir" >&2
