#!/usr/bin/env bash
# The speed figures of the README: cross-attention against decoder-only re-ranking, side by side.
#   bash eval/bench.sh OUT_DIR
set -euo pipefail
OUT=${1:?output folder}
mkdir -p "$OUT"
# passages (~80 tokens): T5 shapes, both precisions, decoder reading encoder states or stored keys/values
decrank bench --shape t5-small --shape t5-base --depth 100 --doc-tokens 80 --query-tokens 10 \
  --precision fp32 --precision bf16 --attention eager --queries 5 --threads 2 --json "$OUT/bench-t5.json"
# documents (~400 tokens), T5-small shape
decrank bench --shape t5-small --depth 100 --doc-tokens 400 --query-tokens 10 --precision fp32 --precision bf16 \
  --content cross-kv --attention eager --queries 3 --threads 2 --json "$OUT/bench-t5-small-400.json"
# the packaged model against the bi-encoder a user would reach for
decrank bench --shape decrank-minilm --depth 100 --doc-tokens 80 --query-tokens 10 --precision fp32 --precision bf16 \
  --attention eager --queries 5 --threads 2 --biencoder --json "$OUT/bench-minilm.json"
# the T5-large shape, passages, keys/values (fewer queries: a fp32 cross-attention query takes most of a minute)
decrank bench --shape t5-large --depth 100 --doc-tokens 80 --query-tokens 10 --precision fp32 --precision bf16 \
  --content cross-kv --attention eager --queries 3 --threads 2 --json "$OUT/bench-t5-large.json"
# depth 1000 (a BM25 top-1000), passages, bf16, keys/values
decrank bench --shape t5-small --shape t5-base --depth 1000 --doc-tokens 80 --query-tokens 10 --precision bf16 \
  --content cross-kv --attention eager --queries 3 --threads 2 --json "$OUT/bench-depth-1000.json"
