#!/usr/bin/env bash
# Sets up and runs the main job on the embedded default: the local host (the Functions app's
# routes and Durable orchestration) on http://127.0.0.1:5004, serving the bundled demo model (docs/demo.md) when
# no model is configured. Durable state lives in Azurite (the Azure Storage provider, as in
# Azure; data in .data/azurite-jobs), started here and stopped with the host, so jobs survive a
# restart. `scripts/run.sh --worker` in a second terminal adds a worker process that shares the
# jobs' activities. Settings: local.settings.json if present, else local.settings.example.json,
# then environment variables (e.g. MODEL_ID, MODEL_PATH, TRANSCODER_SET, SECRET,
# DURABLE_STORAGE=in-memory). The host prints one line once it answers on its port,
#   GraphFunctions local host ready: open http://127.0.0.1:5004/viewer (graph viewer; API docs: http://127.0.0.1:5004/docs)
# (a worker: "GraphFunctions worker ready: ..."). Stop with Ctrl+C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-viewer.sh   # the viewer's scripts (d3, the schema validator), copied beside the app by the build
# jemalloc: the host re-executes itself with it (NativeAllocator; docs/performance.md, "Memory").
scripts/install-debian-tools.sh libjemalloc2:libjemalloc.so.2
dotnet build GraphFunctions.LocalHost -c Release --nologo -v quiet
# The Durable dispatcher caps concurrent work at the processor count; let fan-out run.
export DOTNET_PROCESSOR_COUNT="${DOTNET_PROCESSOR_COUNT:-8}"
# One malloc arena: activities run on any pool thread, and glibc's per-thread arenas would each keep
# fragments of the batches' large temporaries (docs/performance.md, "Memory"). Read at process start.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-1}"

# Azurite for the task hub, unless one is already up (the first run.sh of a host and a worker owns it).
if ! (exec 3<>/dev/tcp/127.0.0.1/10000) 2>/dev/null; then
  scripts/test-services.sh run-azurite
  trap 'scripts/test-services.sh stop-azurite' EXIT
fi

# The host, not this script, says when it is ready (LocalHostApp.ReadyLine): only then does the address answer.
dotnet GraphFunctions.LocalHost/bin/Release/net10.0/linux-x64/GraphFunctions.LocalHost.dll "$@"
