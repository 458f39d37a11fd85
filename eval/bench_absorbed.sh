#!/usr/bin/env bash
# The store figures of run_files/README.md: the decoder reading fp16 encoder states through the key/value
# projections, a cross-kv store, and encoder states absorbed (from fp16 and from a PQ64 store), beside the
# cross-attention baseline.   bash eval/bench_absorbed.sh OUT_DIR [PRECISION ...]
set -euo pipefail
OUT=${1:?output folder}; shift
PRECISIONS=("${@:-fp32}")
P=(); for p in "${PRECISIONS[@]}"; do P+=(--precision "$p"); done
mkdir -p "$OUT"
COMMON=(--depth 100 --query-tokens 10 --attention eager --threads 2 "${P[@]}"
        --content encoder-states --content cross-kv --content absorbed --codec fp16 --codec PQ64)
# passages (~80 tokens), T5-base shape
decrank bench --shape t5-base --doc-tokens 80 --queries 5 "${COMMON[@]}" --json "$OUT/absorbed-t5-base.json"
# documents (~400 tokens), T5-small shape
decrank bench --shape t5-small --doc-tokens 400 --queries 3 "${COMMON[@]}" --json "$OUT/absorbed-t5-small-400.json"
# the packaged model, DL19-length passages (87 tokens on average)
decrank bench --shape decrank-minilm --doc-tokens 87 --queries 5 "${COMMON[@]}" --json "$OUT/absorbed-minilm.json"
