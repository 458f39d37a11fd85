#!/usr/bin/env bash
# BEIR SciFact (test split): index with Pyserini (title + text), BM25 top-100, encode, re-rank, eval.
#   bash eval/scifact.sh BEIR_FOLDER OUT_DIR [MODEL]
# Any BEIR folder with corpus.jsonl, queries.jsonl and qrels_test.tsv (or qrels/test.tsv) works.
set -euo pipefail
DATA=${1:?BEIR folder}
OUT=${2:?output folder}
MODEL=${3:-decrank-minilm}
NAME=$(basename "$DATA")
HERE=$(cd "$(dirname "$0")" && pwd)
QRELS="$DATA/qrels_test.tsv"; [ -f "$QRELS" ] || QRELS="$DATA/qrels/test.tsv"
mkdir -p "$OUT"
python "$HERE/convert.py" corpus "$DATA" "$OUT/collection/docs.jsonl"
python "$HERE/convert.py" topics "$DATA/queries.jsonl" "$OUT/topics.tsv" --qrels "$QRELS"
[ -d "$OUT/index" ] || decrank pyserini index.lucene --collection JsonCollection --input "$OUT/collection" \
  --index "$OUT/index" --generator DefaultLuceneDocumentGenerator --threads 2 --storeRaw
# BEIR convention: a document whose id equals the query's is not a hit (--remove-query)
decrank pyserini search.lucene --index "$OUT/index" --topics "$OUT/topics.tsv" --output "$OUT/bm25.txt" \
  --bm25 --hits 100 --remove-query --threads 2 --batch-size 32
CORPUS="$OUT/collection/docs.jsonl" TOPICS="$OUT/topics.tsv" BM25_RUN="$OUT/bm25.txt" LEVEL=1
source "$HERE/_rerank_and_eval.sh"
