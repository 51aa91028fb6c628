#!/usr/bin/env bash
# Rebuild corpora/ and the shipped checkpoints/ from scratch, in one command:
#     bash scripts/rebuild.sh            (about 19 minutes on two CPU cores)
# Each checkpoint records the exact `textrnn train` command in its config.json. The resume
# state (last/) is dropped to keep the repository small; example prompts (examples.json) stay.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

$PY scripts/build_corpora.py

train() {  # train OUT CORPUS [FLAGS...]
    local out=$1; shift
    $PY -m textrnn.cli train "$@" --out "$out" --overwrite --no-progress
    rm -rf "$out/last"
}
train checkpoints/shakespeare-char-lstm corpora/shakespeare.txt --time-budget 300 --val-fraction 0.05
train checkpoints/shakespeare-bpe-lstm corpora/shakespeare.txt --time-budget 300 --val-fraction 0.05 \
    --tokenizer bpe --vocab-size 512
train checkpoints/werkzeug-char-lstm corpora/werkzeug.txt --time-budget 300
