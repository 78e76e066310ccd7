#!/usr/bin/env bash
# start | stop the local stand-ins the tests talk to. For now: nothing to start.
set -euo pipefail
case "${1:-}" in
  start|stop) ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
