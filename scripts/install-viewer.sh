#!/usr/bin/env bash
# Installs the viewer's third-party scripts (d3, and @cfworker/json-schema for the open-file check;
# pinned by viewer/package-lock.json) from npm into
# viewer/node_modules (git-ignored); the build copies it beside the app, which serves it. Nothing
# is fetched at run time and no page loads from a CDN. Re-installs only when the lock changes.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=viewer
stamp="$dir/node_modules/.installed-lock.json"
if cmp -s "$dir/package-lock.json" "$stamp" && [ -s "$dir/node_modules/d3/dist/d3.min.js" ] \
  && [ -s "$dir/node_modules/@cfworker/json-schema/dist/esm/validator.js" ]; then
  exit 0
fi
echo "install-viewer: installing d3 and @cfworker/json-schema into $dir/node_modules" >&2
if ! npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error >&2; then
  echo "install-viewer: 'npm ci' failed in $dir; the npm registry must be reachable once to install the viewer's scripts" >&2
  exit 1
fi
cp "$dir/package-lock.json" "$stamp"
