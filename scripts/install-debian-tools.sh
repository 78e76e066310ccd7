#!/usr/bin/env bash
# Installs the named Debian packages whose command of the same name is missing (usage:
# install-debian-tools.sh chromium curl jq). The tests drive system programs: browser downloads by
# Puppeteer do not work offline, and the README tour's curl and jq lines run as written.
# PACKAGE:LIBRARY names a package by a shared library it provides instead of a command
# (libjemalloc2:libjemalloc.so.2, the hosts' allocator: docs/performance.md, "Memory").
set -euo pipefail

present() {
  case "$1" in
    *:*) /sbin/ldconfig -p | grep "${1#*:} " > /dev/null ;;   # not -q: an early exit would fail the pipe (pipefail)
    *) command -v "$1" > /dev/null ;;
  esac
}
missing=()
for tool in "$@"; do
  present "$tool" || missing+=("${tool%%:*}")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get > /dev/null; then
  echo "install-debian-tools: ${missing[*]} missing and this is not a Debian-like system; install them and put them on PATH" >&2
  exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
echo "install-debian-tools: installing Debian's ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null 2>&1; then
  "${as_root[@]}" apt-get update -q > /dev/null
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null
fi
for tool in "$@"; do
  present "$tool" || { echo "install-debian-tools: apt-get finished but ${tool#*:} is not installed" >&2; exit 1; }
done
