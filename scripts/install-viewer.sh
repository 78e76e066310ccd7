#!/usr/bin/env bash
# Installs the viewer's third-party script (d3, pinned by viewer/package-lock.json) from npm into
# viewer/node_modules (git-ignored); the build copies it beside the app, which serves it. Nothing
# is fetched at run time and no page loads from a CDN. Re-installs only when the lock changes.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=viewer
stamp="$dir/node_modules/.installed-lock.json"
if cmp -s "$dir/package-lock.json" "$stamp" && [ -s "$dir/node_modules/d3/dist/d3.min.js" ]; then
  exit 0
fi
echo "install-viewer: installing d3 into $dir/node_modules" >&2
if ! npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error >&2; then
  echo "install-viewer: 'npm ci' failed in $dir; the npm registry must be reachable once to install the viewer's d3" >&2
  exit 1
fi
cp "$dir/package-lock.json" "$stamp"
