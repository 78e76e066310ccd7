#!/usr/bin/env bash
# Installs Debian's chromium for the viewer's browser tests where it is missing (browser downloads
# by Playwright or Puppeteer do not work offline; the tests drive the system executable).
set -euo pipefail

if command -v chromium > /dev/null; then
  exit 0
fi
if ! command -v apt-get > /dev/null; then
  echo "install-browser: chromium is missing and this is not a Debian-like system; install Chromium and put it on PATH as 'chromium'" >&2
  exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
echo "install-browser: installing Debian's chromium (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium > /dev/null 2>&1; then
  "${as_root[@]}" apt-get update -q > /dev/null
  "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium > /dev/null
fi
command -v chromium > /dev/null || { echo "install-browser: apt-get finished but chromium is not on PATH" >&2; exit 1; }
