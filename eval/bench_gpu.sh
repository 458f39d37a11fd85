#!/usr/bin/env bash
# The GPU figures of docs/speed.md: the decoder path against cross-attention on one GPU, queries batched
# together, and where the GPU encoder's time goes. About 10 minutes on one H100 (issue 26's grid).
#   bash eval/bench_gpu.sh OUT_DIR
set -euo pipefail
OUT=${1:?output folder}
mkdir -p "$OUT"
# T5-base, depth 100: the decoder path reading a PQ64 store (codes decoded on the GPU) or fp16 states, absorbed;
# 1, 8 and 64 queries per batch, bf16 and fp32
decrank bench --device cuda --shape t5-base --depth 100 --doc-tokens 80 --query-tokens 10 --precision bf16 \
  --precision fp32 --content absorbed --codec PQ64 --codec fp16 --query-batch 1 --query-batch 8 --query-batch 64 \
  --queries 5 --json "$OUT/bench-gpu-t5-base.json"
# depth 1000 (a BM25 top-1000): 1 and 8 queries per batch, bf16
decrank bench --device cuda --shape t5-base --depth 1000 --doc-tokens 80 --query-tokens 10 --precision bf16 \
  --content absorbed --codec PQ64 --query-batch 1 --query-batch 8 --queries 3 --json "$OUT/bench-gpu-t5-base-1000.json"
# T5-large, depth 100, bf16
decrank bench --device cuda --shape t5-large --depth 100 --doc-tokens 80 --query-tokens 10 --precision bf16 \
  --content absorbed --codec PQ64 --query-batch 1 --query-batch 8 --query-batch 64 --queries 5 \
  --json "$OUT/bench-gpu-t5-large.json"
# the encoder: passages/s against the GPU's measured peak, the bare encoder beside `decrank encode`'s own path,
# and a profile of a batch of 256
python eval/encode_rate.py --device cuda --shape t5-base --doc-tokens 87 --precision bf16 --batch-size 64 \
  --batch-size 256 --batch-size 1024 --store-path --profile 256 --json "$OUT/encode-rate-gpu.json"
