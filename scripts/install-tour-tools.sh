#!/usr/bin/env bash
# Installs Debian's curl and jq where missing: the README tour's commands use them, and its test
# (ReadmeTourTests) runs those commands as written.
set -euo pipefail

missing=()
for tool in curl jq; do
  command -v "$tool" > /dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get > /dev/null; then
  echo "install-tour-tools: ${missing[*]} missing and this is not a Debian-like system; install them and put them on PATH" >&2
  exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
echo "install-tour-tools: installing Debian's ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null 2>&1; then
  "${as_root[@]}" apt-get update -q > /dev/null
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null
fi
for tool in "${missing[@]}"; do
  command -v "$tool" > /dev/null || { echo "install-tour-tools: apt-get finished but $tool is not on PATH" >&2; exit 1; }
done
