#!/usr/bin/env bash
# Sets up and runs the main job on the embedded default: the local host (the Functions app's
# routes and Durable orchestration, in process) on http://127.0.0.1:5004, serving the bundled
# tiny model when no model is configured. Settings: local.settings.json if present, else
# local.settings.example.json, then environment variables (e.g. MODEL_ID, MODEL_PATH,
# TRANSCODER_SET, SECRET). Stop with Ctrl+C.
set -euo pipefail
cd "$(dirname "$0")/.."

dotnet build GraphFunctions.LocalHost -c Release --nologo -v quiet
# The in-process Durable engine caps concurrent work at the processor count; let fan-out run.
export DOTNET_PROCESSOR_COUNT="${DOTNET_PROCESSOR_COUNT:-8}"
echo "GraphFunctions local host on http://127.0.0.1:5004 (docs: http://127.0.0.1:5004/docs)"
exec dotnet GraphFunctions.LocalHost/bin/Release/net10.0/linux-x64/GraphFunctions.LocalHost.dll "$@"
