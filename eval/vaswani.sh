#!/usr/bin/env bash
# The main job: the whole pipeline on Vaswani (NPL), which this repository ships in data/vaswani.
#   bash eval/vaswani.sh DATA_DIR OUT_DIR [MODEL]
# Index with Pyserini, BM25 top-100, encode once, re-rank, trec_eval table.
set -euo pipefail
DATA=${1:?data folder with doc-text.trec, query-text.trec, qrels}
OUT=${2:?output folder}
MODEL=${3:-decrank-minilm}
NAME=vaswani
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
python "$HERE/convert.py" corpus "$DATA/doc-text.trec" "$OUT/collection/docs.jsonl"
python "$HERE/convert.py" topics "$DATA/query-text.trec" "$OUT/topics.tsv"
[ -d "$OUT/index" ] || decrank pyserini index.lucene --collection JsonCollection --input "$OUT/collection" \
  --index "$OUT/index" --generator DefaultLuceneDocumentGenerator --threads 2 --storeRaw
decrank pyserini search.lucene --index "$OUT/index" --topics "$OUT/topics.tsv" --output "$OUT/bm25.txt" \
  --bm25 --hits 100 --threads 2 --batch-size 32
CORPUS="$OUT/collection/docs.jsonl" TOPICS="$OUT/topics.tsv" QRELS="$DATA/qrels" BM25_RUN="$OUT/bm25.txt" LEVEL=1
source "$HERE/_rerank_and_eval.sh"
