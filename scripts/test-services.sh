#!/usr/bin/env bash
# start | stop the local stand-ins the storage tests talk to:
#   Azurite  (Azure Blob/Queue/Table) on 127.0.0.1:10000-10002, data in .data/azurite
#   s3rver   (S3, bucket "graphs")    on 127.0.0.1:4568,         data in .data/s3rver
# Versions are pinned by tools/package-lock.json; the first start installs them into .tools/
# (npm ci). Both run in the background as plain node processes; their PIDs go to .data/*.pid
# and `stop` kills exactly those. `start` while they run is a no-op; a port held by some other
# process is an error rather than a silent reuse (see check_ports_free).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=.tools
DATA=.data
BIN=$TOOLS/node_modules/.bin

# Per service: the ports it must open, and its command line. The commands exec, so that run in
# the background they replace the subshell: $! is then node itself, not a wrapper (killing an
# npx-style wrapper leaves its node child running). HUP is ignored so the service outlives the
# terminal of the script that started it; `stop` ends it.
AZURITE_PORTS=(10000 10001 10002)
S3RVER_PORTS=(4568)
azurite_cmd() {
  trap '' HUP
  exec "$BIN/azurite" --silent --skipApiVersionCheck --disableTelemetry --location "${AZURITE_LOCATION:-$DATA/azurite}" \
    --blobHost 127.0.0.1 --blobPort 10000 --queueHost 127.0.0.1 --queuePort 10001 \
    --tableHost 127.0.0.1 --tablePort 10002
}
s3rver_cmd() {
  trap '' HUP
  exec "$BIN/s3rver" --directory "$DATA/s3rver" --address 127.0.0.1 --port 4568 --silent --configure-bucket graphs
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The recorded PID, if that process is alive and is still the service we started.
running_pid() {
  local name=$1 pidfile="$DATA/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  if [ -d "/proc/$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$name"; then
    echo "$pid"
  else
    rm -f "$pidfile"
    return 1
  fi
}

# npm ci into .tools/ when the lock file there differs from the committed one (or nothing is installed).
install_tools() {
  if cmp -s tools/package-lock.json "$TOOLS/package-lock.json" && [ -x "$BIN/azurite" ] && [ -x "$BIN/s3rver" ]; then
    return
  fi
  command -v npm >/dev/null || { echo "test-services: npm not found (Node.js 20 is needed for Azurite and s3rver)" >&2; exit 1; }
  echo "test-services: installing Azurite and s3rver into $TOOLS/ (npm ci)" >&2
  rm -rf "$TOOLS"
  mkdir -p "$TOOLS"
  cp tools/package.json tools/package-lock.json "$TOOLS/"
  # Neither package has install scripts; --ignore-scripts keeps it that way for their dependencies.
  npm ci --prefix "$TOOLS" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
}

# Refuse to start over a port that some other process holds (another checkout's emulators, say):
# our tests would talk to it, and its owner could stop it mid-run.
check_ports_free() {
  local name=$1 ports_var="${1^^}_PORTS[@]" port
  local -a ports=("${!ports_var}")
  running_pid "$name" >/dev/null && return
  for port in "${ports[@]}"; do
    if port_open "$port"; then
      echo "test-services: port $port is taken by another process, so $name cannot start here; stop that process first" >&2
      exit 1
    fi
  done
}

start_one() {
  local name=$1 pid
  if pid=$(running_pid "$name"); then
    echo "test-services: $name already running (pid $pid)" >&2
    return
  fi
  # Fresh data each start: runs do not see each other's objects, and old graphs do not pile up
  # (scripts/run.sh keeps its own Azurite data instead: its jobs survive restarts).
  if [ -z "${AZURITE_LOCATION:-}" ]; then
    rm -rf "${DATA:?}/$name"
    mkdir -p "$DATA/$name"
  else
    mkdir -p "$AZURITE_LOCATION"
  fi
  # The binaries are node scripts starting "#!/usr/bin/env node", and env execs node in turn.
  "${name}_cmd" </dev/null >"$DATA/$name.log" 2>&1 &
  echo $! >"$DATA/$name.pid"
}

wait_ready() {
  local name=$1 ports_var="${1^^}_PORTS[@]" port pid
  local -a ports=("${!ports_var}")
  for _ in $(seq 1 300); do
    pid=$(running_pid "$name") || fail_start "$name" "exited during start"
    local ready=1
    for port in "${ports[@]}"; do port_open "$port" || ready=0; done
    if [ "$ready" = 1 ]; then
      echo "test-services: $name ready on 127.0.0.1:${ports[*]} (pid $pid)" >&2
      return
    fi
    sleep 0.1
  done
  fail_start "$name" "did not open ${ports[*]} within 30 s"
}

# A half-started pair is no use: show why, stop both, fail.
fail_start() {
  echo "test-services: $1 $2; its log:" >&2
  cat "$DATA/$1.log" >&2
  stop_one azurite
  stop_one s3rver
  exit 1
}

stop_one() {
  local name=$1 pid
  pid=$(running_pid "$name") || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null || true
  rm -f "$DATA/$name.pid"
  echo "test-services: $name stopped" >&2
}

case "${1:-}" in
  run-azurite)
    # For scripts/run.sh: Azurite alone, its data kept in .data/azurite-jobs across restarts.
    install_tools
    mkdir -p "$DATA"
    check_ports_free azurite
    export AZURITE_LOCATION="$DATA/azurite-jobs"
    start_one azurite
    wait_ready azurite
    ;;
  stop-azurite)
    stop_one azurite
    ;;
  resume-azurite)
    # For the storage-outage test: Azurite again on the data it left (not wiped, unlike start).
    AZURITE_LOCATION="$DATA/azurite" start_one azurite
    wait_ready azurite
    ;;
  start)
    install_tools
    mkdir -p "$DATA"
    check_ports_free azurite
    check_ports_free s3rver
    start_one azurite
    start_one s3rver
    wait_ready azurite
    wait_ready s3rver
    ;;
  stop)
    stop_one azurite
    stop_one s3rver
    ;;
  *)
    echo "usage: $0 start|stop|run-azurite|stop-azurite|resume-azurite" >&2
    exit 2
    ;;
esac
