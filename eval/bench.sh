#!/usr/bin/env bash
# The speed figures of the README: cross-attention against decoder-only re-ranking, side by side.
#   bash eval/bench.sh OUT_DIR
set -euo pipefail
OUT=${1:?output folder}
mkdir -p "$OUT"
decrank bench --shape t5-small --shape t5-base --depth 100 --doc-tokens 80 --query-tokens 10 \
  --precision fp32 --precision bf16 --queries 5 --threads 2 --json "$OUT/bench-t5.json"
decrank bench --shape decrank-minilm --depth 100 --doc-tokens 80 --query-tokens 10 --precision fp32 --precision bf16 \
  --queries 5 --threads 2 --biencoder --json "$OUT/bench-minilm.json"
