#!/usr/bin/env bash
# One prepared check of the GPU route, writing one report file (default: gpu-check-report.md).
#
# On a Linux machine with an NVIDIA GPU and a CUDA build of PyTorch (no internet needed):
#   1. builds against the `TorchSharp` package (not -cpu) with PyTorch's own libtorch libraries
#      on LD_LIBRARY_PATH (TorchSharp binds libtorch 2.10; a newer PyTorch is untested);
#   2. runs the intervention, compact-row and steering tests with tiny models on `cuda`;
#   3. writes Hugging Face parity fixtures with transformers (where installed) and runs the
#      parity tests against them;
#   4. runs `Benchmarks scale` at Gemma-2-2B shapes (26 layers, d_model 2304, 8 heads × 256,
#      d_transcoder 16384, 64 tokens, random weights, bfloat16, batch 48, 10,000 features).
# Anywhere else it runs the same steps on the CPU at a small shape: the dry run CI executes,
# so the script cannot rot. `--cpu` forces the dry run.
#
#   scripts/gpu-check.sh [--cpu] [--report FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

report=gpu-check-report.md
force_cpu=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) force_cpu=1 ;;
    --report) report="$2"; shift ;;
    *) echo "usage: scripts/gpu-check.sh [--cpu] [--report FILE]" >&2; exit 2 ;;
  esac
  shift
done

mode=cpu
torch_lib=""
if [ "$force_cpu" -eq 0 ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  if torch_lib=$(python3 -c 'import os, torch; assert torch.cuda.is_available(); print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null); then
    mode=cuda
  else
    echo "gpu-check: an NVIDIA GPU is present but no CUDA build of PyTorch was found; running the CPU dry run" >&2
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > "$report"
note() { echo "$*" | tee -a "$report"; }
started=$(date +%s)
note "# GPU check ($mode) — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
note ""
note "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
if [ "$mode" = cuda ]; then
  note "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
  note "pytorch: $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)') from $torch_lib"
fi
note ""

# 1. Build. The CUDA flavour takes its natives from PyTorch; the CPU flavour is the normal build.
step() { note "## $1"; shift; local t0; t0=$(date +%s); "$@" 2>&1 | tail -n 40 | tee -a "$report"; local rc=${PIPESTATUS[0]}; note "(exit $rc, $(( $(date +%s) - t0 )) s)"; note ""; return "$rc"; }
if [ "$mode" = cuda ]; then
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  flavour=(-p:TorchSharpFlavor=cuda)
  test_device=cuda
  scale=(--layers 26 --d-model 2304 --head-dim 256 --d-transcoder 16384 --l0 64 --tokens 64 --features 10000 --batch 48 --dtype bfloat16 --device cuda --repeats 1)
else
  flavour=()
  test_device=cpu
  scale=(--layers 2 --d-model 64 --head-dim 16 --d-transcoder 256 --l0 16 --tokens 16 --features 100 --batch 16 --dtype bfloat16 --device cpu --repeats 1)
fi
step "Build (${flavour[*]:-TorchSharp-cpu})" dotnet build GraphFunctions.slnx -c Release --nologo -v quiet "${flavour[@]}"

# dotnet test passes when its filter matches nothing; a check that ran no test fails instead.
tests() { local out rc=0; out=$("$@" 2>&1) || rc=$?; echo "$out"; [ "$rc" -eq 0 ] && grep -Eq 'Passed: +[1-9]' <<< "$out"; }

# 2. Tests that run tiny models on the device (the engine tier).
step "Intervention, compact-row and steering tests on $test_device" \
  tests env GF_TEST_DEVICE="$test_device" dotnet test Attribution.Tests -c Release --no-build --nologo \
  --filter "FullyQualifiedName~InterventionCheckTests|FullyQualifiedName~CompactRowsTests|FullyQualifiedName~SteeringTests"

# 3. Parity with Hugging Face transformers, where it is installed: fixtures written by
#    transformers itself (kept next to the report), then the parity tests against them.
#    Without it the parity tests run on references made by our own forward pass (as in CI).
fixtures_tar="${report%.md}-hf-fixtures.tar.gz"
if python3 -c 'import torch, transformers' >/dev/null 2>&1; then
  step "Hugging Face parity fixtures (transformers $(python3 -c 'import transformers; print(transformers.__version__)'))" \
    python3 tools/hf-parity/make_fixtures.py "$work/hf-fixtures"
  tar -czf "$fixtures_tar" -C "$work" hf-fixtures
  note "fixtures: $fixtures_tar"
  parity_env=(GF_HF_FIXTURES="$work/hf-fixtures")
else
  note "## Hugging Face parity fixtures"
  note "transformers is not installed here: the parity tests compare against references made by our own forward pass"
  note ""
  parity_env=()
fi
step "Parity tests" tests env "${parity_env[@]}" dotnet test Attribution.Tests -c Release --no-build --nologo \
  --filter "FullyQualifiedName~HuggingFaceParityTests"

# 4. The scale benchmark on the shipped paths.
# With the service's process settings (scripts/run.sh, the image).
export DOTNET_PROCESSOR_COUNT="${DOTNET_PROCESSOR_COUNT:-8}" MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-1}"
step "Benchmarks scale ${scale[*]}" \
  dotnet Benchmarks/bin/Release/net10.0/linux-x64/Benchmarks.dll scale "${scale[@]}" --work "$work" --report "$work/scale.md"
note ""
note "total: $(( $(date +%s) - started )) s"
